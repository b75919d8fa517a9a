"""Invalid clicks per campaign day, from ads.invalid-traffic.v1: the gross, net and GIVT/SIVT
columns of reports. Counted in the same transaction as the inbox row (a redelivery is a no-op).
`INVALID_TOPIC` is the topic it reads (wiring.py subscribes it from here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from shopstream.ads.v1 import ads_events_pb2 as ev
from shopstream_ads.domain import traffic as tr
from shopstream_ads.store import invalid as store
from shopstream_ads.topics import INVALID_TOPIC as INVALID_TOPIC
from shopstream_ads.usecases.worker_outputs import own_worker_only
from shopstream_platform.db.inbox import SessionHandler
from shopstream_platform.kafka.events import InvalidEventError


@dataclass(frozen=True)
class InvalidClicks:
    givt: int = 0
    sivt: int = 0
    credited: int = 0

    @property
    def total(self) -> int:
        return self.givt + self.sivt


def summarise(reasons: dict[int, tuple[int, int]]) -> InvalidClicks:
    givt = sum(n for r, (n, _) in reasons.items() if tr.CATEGORY.get(r) == tr.GIVT)
    sivt = sum(n for r, (n, _) in reasons.items() if tr.CATEGORY.get(r) != tr.GIVT)
    return InvalidClicks(givt, sivt, sum(rev for _, rev in reasons.values()))


def on_flagged(worker: str) -> SessionHandler:
    """The handler of this deployment's consumer: flags of another deployment's attribution
    worker on the same broker (`worker` is this one's app id) are skipped."""
    return own_worker_only(worker, ev.InvalidTrafficFlagged, _add)


async def _add(message: ev.InvalidTrafficFlagged, session: AsyncSession) -> None:
    if not message.campaign_id:
        raise InvalidEventError("campaign_id is empty")
    at = message.clicked_at.seconds + message.clicked_at.nanos / 1e9
    day = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")
    await store.add_flag(
        session, message.campaign_id, day, int(message.reason), message.charge_reversed
    )
