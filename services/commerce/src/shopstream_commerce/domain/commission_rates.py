"""Which commission rate applies to an order: a cut waits out its notice period, a raise is at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class RateChange:
    rate_bps: int
    set_at: datetime
    effective_from: datetime


def effective_from(new_bps: int, current_bps: int, now: datetime, notice: timedelta) -> datetime:
    """A lowered rate applies to orders placed `notice` after the change; otherwise now."""
    return now + notice if new_bps < current_bps else now


def rate_for(changes: list[RateChange], placed_at: datetime, default_bps: int) -> int:
    """The rate for an order placed at `placed_at`: the latest change already effective then.

    Ties between changes effective at the same moment go to the one set last.
    """
    effective = [c for c in changes if c.effective_from <= placed_at]
    if not effective:
        return default_bps
    return max(effective, key=lambda c: (c.effective_from, c.set_at)).rate_bps


def current_rate(changes: list[RateChange], now: datetime, default_bps: int) -> int:
    return rate_for(changes, now, default_bps)
