"""The reservation protocol with commerce: reserve on OrderPlaced, release on cancel, expiry or a
refund before shipping, commit on shipment, and the quality signals those outcomes carry.

OrderPlaced reserves every line or none, each line in the warehouse routing picks
(domain/reservation.py: the buyer's region and the stock on hand; an order is split across
warehouses only when one cannot serve it); OrderCancelled and OrderExpired release;
OrderShipped commits; an OrderRefunded before the order shipped releases what will never ship:
everything when it leaves the order REFUNDED, the refunded units when PARTIALLY_REFUNDED
(StockReleased with partial set; the rest is committed on shipment); an OrderRefunded whose
order is CANCELLED (a cancellation after payment) releases everything. Each runs inside the
inbox transaction (dedup by ce_id), and is also idempotent by order id: the order's reservation
state decides whether an event still has work to do, so a replay with new event ids changes
nothing either.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from shopstream.catalog.v1 import events_pb2
from shopstream.commerce.v1 import order_events_pb2, order_pb2
from shopstream_catalog.domain.reservation import (
    Allocation,
    Rejection,
    RequestedLine,
    excess,
    plan,
)
from shopstream_catalog.store import fulfilment as warehouses
from shopstream_catalog.store import repository as repo
from shopstream_catalog.usecases.catalog import STOCK_TOPIC, CatalogApp
from shopstream_platform.kafka.events import InvalidEventError

log = logging.getLogger(__name__)

RESERVED, REJECTED, RELEASED, COMMITTED = "RESERVED", "REJECTED", "RELEASED", "COMMITTED"


def _lines_pb(
    allocations: list[Allocation], platform: frozenset[str] = frozenset()
) -> list[events_pb2.ReservedLine]:
    return [
        events_pb2.ReservedLine(
            line_id=a.line_id,
            sku_id=a.sku_id,
            warehouse_id=a.warehouse_id,
            quantity=a.quantity,
            fulfilled_by_platform=a.warehouse_id in platform,
        )
        for a in allocations
    ]


class Reservations:
    """The reservation protocol's use cases, one per order event (events/order_handlers.py routes
    them)."""

    def __init__(self, app: CatalogApp) -> None:
        self._app = app
        # Products whose cached view went stale in the transaction being handled; the handler
        # drops them from the cache after it (also after a rollback).
        self.touched: set[str] = set()

    async def placed(self, session: AsyncSession, order: order_pb2.Order) -> None:
        if await repo.reservation_state(session, order.order_id) is not None:
            return
        lines = [RequestedLine(line.line_id, line.sku_id, line.quantity) for line in order.lines]
        stock = await repo.stock_for_skus(session, [line.sku_id for line in lines])
        known = await warehouses.sites(session, {w for s in stock.values() for w in s.available})
        outcome = plan(lines, stock, order.ship_to_region, known)
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
            events_pb2.StockReserved(
                order_id=order.order_id,
                lines=_lines_pb(
                    outcome, frozenset(w for w, site in known.items() if site.platform)
                ),
            ),
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
        self.touched.update(products.values())
        for allocation in allocations:
            level = await repo.stock_level(session, allocation.sku_id, allocation.warehouse_id)
            await self._app.stock_event(
                session, products[allocation.sku_id], allocation.sku_id, level, cause
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

    async def cancelled(self, session: AsyncSession, order: order_pb2.Order) -> None:
        await self._release(session, order.order_id, "cancelled")
        await repo.mark_outcome(session, order.order_id, cancelled=True)
        await self._reassess(session, order)

    async def expired(self, session: AsyncSession, order: order_pb2.Order) -> None:
        await self._release(session, order.order_id, "expired")

    async def shipped(self, session: AsyncSession, message: order_events_pb2.OrderShipped) -> None:
        order = message.order
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

    async def refunded(
        self, session: AsyncSession, message: order_events_pb2.OrderRefunded
    ) -> None:
        order = message.order
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
        self.touched.update(changed)
