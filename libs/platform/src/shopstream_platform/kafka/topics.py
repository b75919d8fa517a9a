"""The topic registry (protos/topics.yaml) as typed specs: the one list of public topics."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

DLQ_SUFFIX = ".dlq"
DLQ_RETENTION_MS = 30 * 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    values: tuple[str, ...]
    partitions: int
    retention_ms: int
    cleanup_policy: str
    owner: str
    description: str
    # None: use the cluster's setting (KafkaSettings.replication_factor / min_insync_replicas).
    replication_factor: int | None = None
    min_insync_replicas: int | None = None
    # Internal topics carry a service's own intermediate streams (re-keyed inputs); they are
    # listed so they get created, but are not a contract for subscribers.
    internal: bool = False

    @property
    def dlq(self) -> TopicSpec:
        """The dead-letter twin: same partitions, raw bytes of any value, kept 30 days."""
        return TopicSpec(
            name=self.name + DLQ_SUFFIX,
            key=self.key,
            values=(),
            partitions=self.partitions,
            retention_ms=DLQ_RETENTION_MS,
            cleanup_policy="delete",
            owner=self.owner,
            description=f"Records of {self.name} that consumers could not process, with the reason.",
            replication_factor=self.replication_factor,
            min_insync_replicas=self.min_insync_replicas,
            internal=self.internal,
        )


class TopicRegistry:
    """Looks topics up by name; built from the registry file shipped with the protos package."""

    def __init__(self, specs: Iterable[TopicSpec]) -> None:
        self._specs = {s.name: s for s in specs}

    def __iter__(self) -> Iterator[TopicSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def get(self, name: str) -> TopicSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise KeyError(f"topic {name!r} is not in protos/topics.yaml") from None

    def with_dlqs(self, names: Iterable[str] | None = None) -> list[TopicSpec]:
        """The named topics (all when None) plus their dead-letter twins."""
        chosen = [self.get(n) for n in names] if names is not None else list(self._specs.values())
        return [t for spec in chosen for t in (spec, spec.dlq)]


def parse_registry(document: dict[str, Any]) -> TopicRegistry:
    specs = []
    for raw in document["topics"]:
        specs.append(
            TopicSpec(
                name=raw["name"],
                key=raw["key"],
                values=tuple(raw["values"]),
                partitions=int(raw["partitions"]),
                retention_ms=int(raw["retention_ms"]),
                cleanup_policy=raw.get("cleanup_policy", "delete"),
                owner=raw["owner"],
                description=raw["description"].strip(),
                replication_factor=raw.get("replication_factor"),
                min_insync_replicas=raw.get("min_insync_replicas"),
                internal=bool(raw.get("internal", False)),
            )
        )
    return TopicRegistry(specs)


@cache
def load_registry() -> TopicRegistry:
    """The registry generated into the `shopstream` protos package by `make proto`."""
    text = resources.files("shopstream").joinpath("topics.yaml").read_text(encoding="utf-8")
    return parse_registry(yaml.safe_load(text))
