"""Attributed conversions per order, from ads.attributions.v1: what released cells are built of.

The ledger sums each day's GMV, so it cannot clip one order; released cells need each order's
net value on its own (clipped before summing). This consumer keeps one row per campaign and
order, written in the same transaction as the inbox row that makes a redelivery a no-op.
`ATTRIBUTIONS_TOPIC` is the topic it reads (wiring.py subscribes it from here).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from shopstream.ads.v1 import ads_events_pb2 as ev
from shopstream_ads.store import privacy as store
from shopstream_ads.topics import ATTRIBUTIONS_TOPIC as ATTRIBUTIONS_TOPIC
from shopstream_ads.usecases.worker_outputs import own_worker_only
from shopstream_platform.db.inbox import SessionHandler
from shopstream_platform.kafka.events import InvalidEventError


def _day(message: ev.Attribution) -> str:
    at = message.ordered_at.seconds + message.ordered_at.nanos / 1e9
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")


def on_attribution(worker: str) -> SessionHandler:
    """The handler of this deployment's consumer: `worker` is its attribution worker's app id;
    credits another deployment's worker decided on the same broker are skipped (they may
    decide the same orders from another start, with other attribution ids)."""
    return own_worker_only(worker, ev.Attribution, _add)


async def _add(message: ev.Attribution, session: AsyncSession) -> None:
    for field in ("campaign_id", "order_id", "buyer_id"):
        if not getattr(message, field):
            raise InvalidEventError(f"{field} is empty")
    credit = 0 if message.refund else (-1 if message.withdrawn else 1)
    await store.add_attribution(
        session,
        campaign_id=message.campaign_id,
        order_id=message.order_id,
        advertiser_id=message.advertiser_id,
        day=_day(message),
        buyer_id=message.buyer_id,
        credit=credit,
        amount_minor=message.amount.amount_minor,
    )
