"""Consumer lag per service, read from Kafka itself: for every consumer group of the stack's
services — their gRPC-side consumers, the Faust workers and the combiners in front of them, which
export no lag of their own — the records between the group's committed offset and the end of
each partition it reads, summed per service."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._listoffsets import OffsetSpec

from shopstream_platform.kafka.admin import admin_client
from shopstream_platform.settings import KafkaSettings
from shopstream_simulator.config import SERVICES

TIMEOUT_S = 5.0
# How often the list of groups is read again (a group appears when its consumer first joins).
REDISCOVER_S = 30.0
# Groups of tests and benchmarks on the same broker carry a run token (`ads.ads-kill-266d4aaa.…`);
# the stack's own groups are `<service>`, `<service>.combiner` and `<service>.<suffix>`.
RUN_TOKEN = re.compile(r"[0-9a-f]{8}")


def service_of(group: str, names: Mapping[str, str] | None = None) -> str | None:
    """The stack service a consumer group belongs to, or None for anyone else's group.

    `names`: each service's name in this stack (its `service` label, which is also its Faust
    app id and the prefix of its groups), when it is not the service's own name (tests)."""
    for service in SERVICES:
        name = (names or {}).get(service, service)
        if group == name or group.startswith(f"{name}."):
            return None if RUN_TOKEN.search(group[len(name) :]) else service
    return None


@dataclass
class LagReading:
    per_service: dict[str, int] = field(default_factory=dict)
    per_group: dict[str, int] = field(default_factory=dict)


class LagReader:
    """Blocking (admin requests): call `read` from a worker thread."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self._kafka = kafka
        self._admin: AdminClient | None = None
        self._groups: list[str] = []
        self._discovered_at = 0.0
        self._names: dict[str, str] = {}

    def _client(self) -> AdminClient:
        if self._admin is None:
            self._admin = admin_client(self._kafka)
        return self._admin

    def _discover(self, admin: AdminClient, names: Mapping[str, str]) -> list[str]:
        now = time.monotonic()
        if not self._groups or now - self._discovered_at >= REDISCOVER_S or names != self._names:
            listed = admin.list_consumer_groups(request_timeout=TIMEOUT_S).result()
            self._groups = sorted(g.group_id for g in listed.valid if service_of(g.group_id, names))
            self._discovered_at = now
            self._names = dict(names)
        return self._groups

    def read(self, names: Mapping[str, str] | None = None) -> LagReading:
        names = names or {}
        admin = self._client()
        groups = self._discover(admin, names)
        futures = {
            g: admin.list_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(g)], request_timeout=TIMEOUT_S
            )[g]
            for g in groups
        }
        assigned = _assigned(admin, groups)
        committed: dict[str, list[TopicPartition]] = {}
        for group, future in futures.items():
            try:
                result = future.result()
            except KafkaException:
                continue  # the group went away since it was listed
            mine = assigned.get(group)
            # While the group has members, only what they read: a group keeps the offsets of
            # topics it no longer reads (a Faust app's former sources), and those only grow.
            committed[group] = [
                tp
                for tp in result.topic_partitions
                if tp.error is None
                and tp.offset >= 0
                and (not mine or (tp.topic, tp.partition) in mine)
            ]
        ends = _ends(admin, ((tp.topic, tp.partition) for tps in committed.values() for tp in tps))
        reading = LagReading(per_service=dict.fromkeys(SERVICES, 0))
        for group, tps in committed.items():
            lag = sum(
                max(0, ends.get((tp.topic, tp.partition), tp.offset) - tp.offset) for tp in tps
            )
            reading.per_group[group] = lag
            service = service_of(group, names)
            if service is not None:
                reading.per_service[service] += lag
        return reading


def _assigned(admin: AdminClient, groups: list[str]) -> dict[str, set[tuple[str, int]]]:
    """Each group's partitions assigned to its members now (empty: no members)."""
    if not groups:
        return {}
    out: dict[str, set[tuple[str, int]]] = {}
    for group, future in admin.describe_consumer_groups(groups, request_timeout=TIMEOUT_S).items():
        try:
            description = future.result()
        except KafkaException:
            continue
        out[group] = {
            (tp.topic, tp.partition)
            for member in description.members
            if member.assignment is not None
            for tp in member.assignment.topic_partitions
        }
    return out


def _ends(admin: AdminClient, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
    latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    wanted = {TopicPartition(t, p): latest for t, p in set(partitions)}
    if not wanted:
        return {}
    ends = {}
    for tp, future in admin.list_offsets(wanted, request_timeout=TIMEOUT_S).items():
        try:
            ends[(tp.topic, tp.partition)] = future.result().offset
        except KafkaException:
            continue
    return ends
