"""What every commerce use case is handed: the database, the outbox, settings, metrics, a clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from shopstream_commerce.metrics import CommerceMetrics
from shopstream_commerce.settings import CommerceSettings
from shopstream_platform.db.database import Database
from shopstream_platform.db.outbox import Outbox


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Deps:
    db: Database
    outbox: Outbox
    settings: CommerceSettings
    metrics: CommerceMetrics
    # Injected so a test can move time instead of sleeping.
    now: Callable[[], datetime] = field(default=utc_now)
