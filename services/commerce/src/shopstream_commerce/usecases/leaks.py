"""The day-end check: no unit reserved for an order that can no longer ship, no payment intent
left open, no refund at the provider unconfirmed (rules in domain/leaks.py).

Commerce follows catalog's hold on each order's stock from catalog.stock.v1; `check` lists what
leaked, `refresh` also sets the gauges an alert watches. Run every `leak_check_interval_s`, and on
demand through CheckLeaks (for example at the end of a simulated day).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream.catalog.v1 import events_pb2 as catalog_events
from shopstream_commerce.domain import leaks
from shopstream_commerce.domain.leaks import LeakReport, Reservation
from shopstream_commerce.store import payments as payment_store
from shopstream_commerce.store import repository as repo
from shopstream_commerce.usecases.context import Deps
from shopstream_platform.kafka.events import Event, InvalidEventError

log = logging.getLogger(__name__)


class LeakCheck:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def on_stock_held(self, session: AsyncSession, order_id: str) -> None:
        """StockReserved (called from the saga's answer handler, in its transaction)."""
        await self._move(session, order_id, committed=None)

    async def on_stock_ended(self, event: Event[Message], session: AsyncSession) -> None:
        """catalog.stock.v1 StockReleased (whole) / StockCommitted: the hold ends."""
        message = event.message
        if isinstance(message, catalog_events.StockReleased) and message.partial:
            return  # units refunded before shipping; the rest is still held
        order_id: str = message.order_id  # type: ignore[attr-defined]
        if not order_id:
            raise InvalidEventError("order_id is empty")
        await self._move(
            session, order_id, committed=isinstance(message, catalog_events.StockCommitted)
        )

    async def _move(self, session: AsyncSession, order_id: str, committed: bool | None) -> None:
        current = await repo.reservation(session, order_id)
        if current is None:
            return  # an order of another commerce (a shared broker in tests, an older database)
        target = leaks.held(current) if committed is None else leaks.ended(current, committed)
        if target != current:
            await repo.set_reservation(session, order_id, current, target, self.deps.now())

    async def check(self) -> LeakReport:
        settings = self.deps.settings
        now = self.deps.now()
        grace = timedelta(seconds=settings.leak_grace_s)
        resolve = timedelta(
            seconds=max(settings.payment_resolve_after_s, settings.payment_timeout_s)
        )
        async with self.deps.db.read() as session:
            held = await repo.held_after_end(session)
            intents = await payment_store.overdue_intents(session, now - resolve - grace)
            refunds = await payment_store.unconfirmed_refunds(session, now - grace)
        cutoff = now - grace
        return LeakReport(
            checked_at=now,
            reservations=[
                h for h in held if leaks.is_leak(Reservation.HELD, h.state, h.since, cutoff)
            ],
            intents=intents,
            refunds=refunds,
        )

    async def refresh(self) -> LeakReport:
        """Check and set the gauges; log what leaked (each run, until it is fixed)."""
        report = await self.check()
        metrics = self.deps.metrics
        metrics.leaked_reservations.set(len(report.reservations))
        metrics.overdue_intents.set(len(report.intents))
        refused = sum(1 for r in report.refunds if r.refused)
        metrics.unconfirmed_refunds.labels("refused").set(refused)
        metrics.unconfirmed_refunds.labels("pending").set(len(report.refunds) - refused)
        if not report.clean:
            log.error(
                "day-end check found leaks",
                extra={
                    "leaked_reservations": [h.order_id for h in report.reservations][:20],
                    "overdue_intents": [i.intent_id for i in report.intents][:20],
                    "unconfirmed_refunds": [r.refund_key for r in report.refunds][:20],
                },
            )
        return report
