"""The carrier interface (label, tracking events) and the deterministic sandbox carrier.

Like the payment provider, a real carrier plugs in behind `Carrier`. The sandbox needs no state:
its tracking number carries the time the label was made and a random part, and a package's fate
follows from the tracking number's hash, so the same number always tells the same story, also
after commerce restarts. Shares of lost and late parcels are configurable:

- lost (`lost_share`): IN_TRANSIT after `pickup_s`, LOST after `transit_s`;
- late (`late_share`): IN_TRANSIT, then DELIVERED `late_by_s` after the promised `promise_s`;
- the rest: IN_TRANSIT, then DELIVERED after `transit_s` (within the promise).
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Tracking(enum.Enum):
    IN_TRANSIT = "IN_TRANSIT"
    DELIVERED = "DELIVERED"
    LOST = "LOST"


@dataclass(frozen=True)
class Label:
    carrier: str
    tracking_number: str
    label: str
    # The carrier's promised delivery time.
    deliver_by: datetime


@dataclass(frozen=True)
class TrackingEvent:
    status: Tracking
    at: datetime


class Carrier(Protocol):
    name: str

    async def create_label(self, package_id: str, warehouse_id: str, region: str) -> Label: ...

    async def track(self, tracking_number: str) -> list[TrackingEvent]:
        """Every event of the parcel so far, oldest first."""
        ...


@dataclass(frozen=True)
class SandboxTerms:
    pickup_s: float = 3_600.0
    transit_s: float = 2 * 86_400.0
    promise_s: float = 3 * 86_400.0
    late_by_s: float = 2 * 86_400.0
    lost_share: float = 0.005
    late_share: float = 0.05


class SandboxCarrier:
    name = "sandbox"

    def __init__(self, terms: SandboxTerms, now: Callable[[], datetime]) -> None:
        self.terms = terms
        self._now = now

    async def create_label(self, package_id: str, warehouse_id: str, region: str) -> Label:
        shipped = self._now()
        millis = int(shipped.timestamp() * 1000)
        number = f"SBX{millis}{secrets.token_hex(5).upper()}"
        return Label(
            carrier=self.name,
            tracking_number=number,
            label=f"sandbox://labels/{number}",
            deliver_by=shipped + timedelta(seconds=self.terms.promise_s),
        )

    def fate(self, tracking_number: str) -> Tracking | None:
        """LOST, DELIVERED (late) or None (on time), from the number's hash."""
        digest = hashlib.sha256(tracking_number.encode()).digest()
        share = int.from_bytes(digest[:8], "big") / 2**64
        if share < self.terms.lost_share:
            return Tracking.LOST
        if share < self.terms.lost_share + self.terms.late_share:
            return Tracking.DELIVERED
        return None

    async def track(self, tracking_number: str) -> list[TrackingEvent]:
        shipped = _shipped_at(tracking_number)
        if shipped is None:
            return []
        t = self.terms
        timeline = [TrackingEvent(Tracking.IN_TRANSIT, shipped + timedelta(seconds=t.pickup_s))]
        fate = self.fate(tracking_number)
        if fate == Tracking.LOST:
            timeline.append(TrackingEvent(Tracking.LOST, shipped + timedelta(seconds=t.transit_s)))
        elif fate == Tracking.DELIVERED:
            late = shipped + timedelta(seconds=t.promise_s + t.late_by_s)
            timeline.append(TrackingEvent(Tracking.DELIVERED, late))
        else:
            on_time = shipped + timedelta(seconds=min(t.transit_s, t.promise_s))
            timeline.append(TrackingEvent(Tracking.DELIVERED, on_time))
        now = self._now()
        return [event for event in timeline if event.at <= now]


def _shipped_at(tracking_number: str) -> datetime | None:
    digits = tracking_number[3:-10]
    if not tracking_number.startswith("SBX") or not digits.isdigit():
        return None
    return datetime.fromtimestamp(int(digits) / 1000, UTC)
