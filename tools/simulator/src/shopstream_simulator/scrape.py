"""Reading the services' Prometheus /metrics endpoints (text format) into plain samples."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Samples:
    """Every sample of one scrape: (sample name, sorted labels) → value."""

    values: Mapping[tuple[str, Labels], float]

    def total(self, name: str, **match: str) -> float:
        """Sum of the samples called `name` whose labels include `match`."""
        wanted = set(match.items())
        return sum(
            v for (n, labels), v in self.values.items() if n == name and wanted <= set(labels)
        )

    def by(self, name: str, label: str, **match: str) -> dict[str, float]:
        """Sum of `name` per value of `label`."""
        wanted = set(match.items())
        out: dict[str, float] = {}
        for (n, labels), v in self.values.items():
            if n != name or not wanted <= set(labels):
                continue
            key = dict(labels).get(label, "")
            out[key] = out.get(key, 0.0) + v
        return out


def parse(text: str) -> Samples:
    values: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = float(sample.value)
    return Samples(values)


def _fetch(address: str, timeout_s: float) -> str:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=timeout_s) as response:
        body: bytes = response.read()
    return body.decode()


async def scrape(address: str, timeout_s: float = 2.0) -> Samples | None:
    """The endpoint's samples, or None when it does not answer."""
    try:
        text = await asyncio.to_thread(_fetch, address, timeout_s)
    except (OSError, urllib.error.URLError, ValueError):
        return None
    return parse(text)
