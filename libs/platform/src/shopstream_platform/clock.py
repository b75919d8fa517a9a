"""The clock a use case reads: injected (`now: Clock = utc_now`) so a test can move time instead
of sleeping."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)
