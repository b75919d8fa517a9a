"""commerce.orders.v1 → the reservation protocol and the quality signals.

OrderPlaced reserves every line or none; OrderCancelled and OrderExpired release; OrderShipped
commits; an OrderRefunded before the order shipped releases what will never ship: everything
when it leaves the order REFUNDED, the refunded units when PARTIALLY_REFUNDED (StockReleased with
partial set; the rest is committed on shipment); an OrderRefunded whose order is CANCELLED (a
cancellation after payment) releases everything. Each handler runs inside the inbox transaction (dedup by ce_id), and is also idempotent
by order id: the order's reservation state decides whether an event still has work to do, so a
replay with new event ids changes nothing either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream.catalog.v1 import events_pb2
from shopstream.commerce.v1 import order_events_pb2, order_pb2
from shopstream_catalog.app import PRODUCTS_TOPIC, STOCK_TOPIC, CatalogApp
from shopstream_catalog.domain.reservation import (
    Allocation,
    Rejection,
    RequestedLine,
    excess,
    plan,
)
from shopstream_catalog.store import repository as repo
from shopstream_platform.db.inbox import SqlInbox
from shopstream_platform.kafka.events import Event, Handler, InvalidEventError, Outcome

log = logging.getLogger(__name__)

ORDERS_TOPIC = "commerce.orders.v1"

RESERVED, REJECTED, RELEASED, COMMITTED = "RESERVED", "REJECTED", "RELEASED", "COMMITTED"


def _lines_pb(allocations: list[Allocation]) -> list[events_pb2.ReservedLine]:
    return [
        events_pb2.ReservedLine(
            line_id=a.line_id, sku_id=a.sku_id, warehouse_id=a.warehouse_id, quantity=a.quantity
        )
        for a in allocations
    ]


def _order(event: Event[Message]) -> order_pb2.Order:
    order: order_pb2.Order = event.message.order  # type: ignore[attr-defined]
    if not order.order_id:
        raise InvalidEventError("order.order_id is empty")
    return order


class OrderEventHandlers:
    """Routes for the catalog's consumer of commerce.orders.v1."""

    def __init__(self, app: CatalogApp) -> None:
        self._app = app
        # Products whose cached view went stale in the transaction being handled.
        self._touched: set[str] = set()

    def routes(self, inbox: SqlInbox) -> dict[type[Message], Handler]:
        table: dict[
            type[Message], Callable[[Event[Message], AsyncSession], Coroutine[Any, Any, None]]
        ] = {
            order_events_pb2.OrderPlaced: self.on_placed,
            order_events_pb2.OrderCancelled: self.on_cancelled,
            order_events_pb2.OrderExpired: self.on_expired,
            order_events_pb2.OrderShipped: self.on_shipped,
            order_events_pb2.OrderRefunded: self.on_refunded,
        }
        return {t: self._after_commit(inbox.handler(h)) for t, h in table.items()}

    def _after_commit(self, handler: Handler) -> Handler:
        async def handle(event: Event[Message]) -> Outcome | None:
            self._touched.clear()
            try:
                return await handler(event)
            finally:
                # Also after a rollback: dropping a cache entry is always safe.
                self._app.cache.invalidate(self._touched)

        return handle

    async def on_placed(self, event: Event[Message], session: AsyncSession) -> None:
        order = _order(event)
        if await repo.reservation_state(session, order.order_id) is not None:
            return
        lines = [RequestedLine(line.line_id, line.sku_id, line.quantity) for line in order.lines]
        outcome = plan(lines, await repo.stock_for_skus(session, [line.sku_id for line in lines]))
        now = datetime.now(UTC)
        if isinstance(outcome, list) and not await self._apply(session, outcome):
            outcome = Rejection(
                outcome[0].sku_id, "OUT_OF_STOCK", "stock was taken by a concurrent order"
            )
        if isinstance(outcome, Rejection):
            await repo.set_reservation_state(session, order.order_id, REJECTED, now)
            await self._app.outbox.add(
                session,
                STOCK_TOPIC,
                order.order_id,
                events_pb2.StockReservationRejected(
                    order_id=order.order_id,
                    sku_id=outcome.sku_id,
                    reason=events_pb2.RejectionReason.Value(f"REJECTION_REASON_{outcome.reason}"),
                    message=outcome.message,
                ),
            )
            self._app.metrics.reservations.labels("rejected").inc()
            return
        await repo.record_allocations(session, order.order_id, outcome)
        await repo.set_reservation_state(session, order.order_id, RESERVED, now)
        await self._after_stock_change(session, outcome, "reserved")
        await self._app.outbox.add(
            session,
            STOCK_TOPIC,
            order.order_id,
            events_pb2.StockReserved(order_id=order.order_id, lines=_lines_pb(outcome)),
        )
        placed_at = order.placed_at.ToDatetime(tzinfo=UTC) if order.HasField("placed_at") else now
        products = await repo.products_of_skus(session, [a.sku_id for a in outcome])
        await repo.record_placed(
            session,
            [
                repo.OutcomeLine(
                    order_id=order.order_id,
                    line_id=line.line_id,
                    seller_id=line.seller_id,
                    product_id=line.product_id or products.get(line.sku_id, ""),
                    quantity=line.quantity,
                    placed_at=placed_at,
                )
                for line in order.lines
            ],
        )
        self._app.metrics.reservations.labels("reserved").inc()

    async def _apply(self, session: AsyncSession, allocations: list[Allocation]) -> bool:
        """Reserve every allocation or none (a savepoint undoes a partial reservation)."""
        savepoint = await session.begin_nested()
        for allocation in allocations:
            if not await repo.reserve(session, allocation):
                await savepoint.rollback()
                return False
        await savepoint.commit()
        return True

    async def _after_stock_change(
        self, session: AsyncSession, allocations: list[Allocation], cause: str
    ) -> None:
        products = await repo.products_of_skus(session, [a.sku_id for a in allocations])
        await repo.refresh_available(session, products.values())
        self._touched.update(products.values())
        for allocation in allocations:
            level = await repo.stock_level(session, allocation.sku_id, allocation.warehouse_id)
            await self._app.outbox.add(
                session,
                PRODUCTS_TOPIC,
                products[allocation.sku_id],
                events_pb2.StockChanged(
                    product_id=products[allocation.sku_id],
                    sku_id=allocation.sku_id,
                    warehouse_id=allocation.warehouse_id,
                    on_hand=level.on_hand,
                    reserved=level.reserved,
                    cause=cause,
                ),
            )

    async def _release(self, session: AsyncSession, order_id: str, cause: str) -> None:
        state = await repo.reservation_state(session, order_id)
        now = datetime.now(UTC)
        if state is None:
            # Cancelled before we saw it placed: remember, so a late OrderPlaced reserves nothing.
            await repo.set_reservation_state(session, order_id, RELEASED, now)
            return
        if state != RESERVED:
            return
        allocations = await repo.allocations_of(session, order_id)
        for allocation in allocations:
            await repo.release_or_commit(session, allocation, commit=False)
        await repo.set_reservation_state(session, order_id, RELEASED, now)
        await self._after_stock_change(session, allocations, "released")
        await self._app.outbox.add(
            session,
            STOCK_TOPIC,
            order_id,
            events_pb2.StockReleased(order_id=order_id, lines=_lines_pb(allocations), cause=cause),
        )
        self._app.metrics.reservations.labels("released").inc()

    async def on_cancelled(self, event: Event[Message], session: AsyncSession) -> None:
        order = _order(event)
        await self._release(session, order.order_id, "cancelled")
        await repo.mark_outcome(session, order.order_id, cancelled=True)
        await self._reassess(session, order)

    async def on_expired(self, event: Event[Message], session: AsyncSession) -> None:
        await self._release(session, _order(event).order_id, "expired")

    async def on_shipped(self, event: Event[Message], session: AsyncSession) -> None:
        order = _order(event)
        message: order_events_pb2.OrderShipped = event.message  # type: ignore[assignment]
        if await repo.reservation_state(session, order.order_id) == RESERVED:
            allocations = await repo.allocations_of(session, order.order_id)
            for allocation in allocations:
                await repo.release_or_commit(session, allocation, commit=True)
            await repo.set_reservation_state(session, order.order_id, COMMITTED, datetime.now(UTC))
            await self._after_stock_change(session, allocations, "committed")
            await self._app.outbox.add(
                session,
                STOCK_TOPIC,
                order.order_id,
                events_pb2.StockCommitted(order_id=order.order_id, lines=_lines_pb(allocations)),
            )
            self._app.metrics.reservations.labels("committed").inc()
        late = (
            message.HasField("ship_by")
            and message.HasField("shipped_at")
            and message.shipped_at.ToDatetime() > message.ship_by.ToDatetime()
        )
        await repo.mark_outcome(session, order.order_id, shipped=True, shipped_late=late)
        await self._reassess(session, order)

    async def on_refunded(self, event: Event[Message], session: AsyncSession) -> None:
        order = _order(event)
        message: order_events_pb2.OrderRefunded = event.message  # type: ignore[assignment]
        for line in message.lines:
            if line.quantity <= 0:
                raise InvalidEventError(
                    f"refunded line {line.line_id} has quantity {line.quantity}"
                )
            await repo.add_refunded(session, order.order_id, line.line_id, line.quantity)
        if await repo.reservation_state(session, order.order_id) == RESERVED:
            # Refunded while still reserved (a shipped order's stock is COMMITTED): in full, or
            # cancelled after payment (the seller approved), the order will never ship; in part,
            # the refunded units will not.
            if order.state == order_pb2.ORDER_STATE_CANCELLED:
                await self._release(session, order.order_id, "cancelled")
            elif order.state == order_pb2.ORDER_STATE_REFUNDED:
                await self._release(session, order.order_id, "refunded")
            else:
                await self._release_refunded_units(session, order)
        await self._reassess(session, order)

    async def _release_refunded_units(self, session: AsyncSession, order: order_pb2.Order) -> None:
        """Release what the order's snapshot says will not ship (quantity - refunded per line).
        Idempotent by the held allocations: a replay finds nothing in excess."""
        keep = {line.line_id: line.quantity - line.refunded_quantity for line in order.lines}
        released = excess(await repo.allocations_of(session, order.order_id), keep)
        if not released:
            return
        for allocation in released:
            await repo.release_or_commit(session, allocation, commit=False)
            await repo.shrink_allocation(session, order.order_id, allocation)
        await self._after_stock_change(session, released, "released")
        await self._app.outbox.add(
            session,
            STOCK_TOPIC,
            order.order_id,
            events_pb2.StockReleased(
                order_id=order.order_id, lines=_lines_pb(released), cause="refunded", partial=True
            ),
        )
        self._app.metrics.reservations.labels("released_partially").inc()

    async def _reassess(self, session: AsyncSession, order: order_pb2.Order) -> None:
        sellers = {line.seller_id for line in order.lines if line.seller_id}
        products = {line.product_id for line in order.lines if line.product_id}
        changed = await self._app.reassess_quality(session, sellers, products)
        self._touched.update(changed)
