"""commerce.orders.v1 → the reservation protocol's use cases (usecases/reservations.py).

Routing only: each order event type goes to its use case inside the inbox transaction; the
products the transaction touched are dropped from the cache after it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream.commerce.v1 import order_events_pb2, order_pb2
from shopstream_catalog.usecases.reservations import Reservations
from shopstream_platform.db.inbox import SqlInbox
from shopstream_platform.kafka.events import Event, Handler, InvalidEventError, Outcome

ORDERS_TOPIC = "commerce.orders.v1"

Route = Callable[[Event[Message], AsyncSession], Awaitable[None]]


def _order(event: Event[Message]) -> order_pb2.Order:
    order = getattr(event.message, "order", None)
    if not isinstance(order, order_pb2.Order) or not order.order_id:
        raise InvalidEventError("order.order_id is empty")
    return order


class OrderEventHandlers:
    """Routes for the catalog's consumer of commerce.orders.v1."""

    def __init__(self, reservations: Reservations, invalidate: Callable[[set[str]], None]) -> None:
        self._reservations = reservations
        self._invalidate = invalidate

    def routes(self, inbox: SqlInbox) -> dict[type[Message], Handler]:
        r = self._reservations

        async def placed(event: Event[Message], session: AsyncSession) -> None:
            await r.placed(session, _order(event))

        async def cancelled(event: Event[Message], session: AsyncSession) -> None:
            await r.cancelled(session, _order(event))

        async def expired(event: Event[Message], session: AsyncSession) -> None:
            await r.expired(session, _order(event))

        async def shipped(event: Event[Message], session: AsyncSession) -> None:
            _order(event)
            assert isinstance(event.message, order_events_pb2.OrderShipped)
            await r.shipped(session, event.message)

        async def refunded(event: Event[Message], session: AsyncSession) -> None:
            _order(event)
            assert isinstance(event.message, order_events_pb2.OrderRefunded)
            await r.refunded(session, event.message)

        table: dict[type[Message], Route] = {
            order_events_pb2.OrderPlaced: placed,
            order_events_pb2.OrderCancelled: cancelled,
            order_events_pb2.OrderExpired: expired,
            order_events_pb2.OrderShipped: shipped,
            order_events_pb2.OrderRefunded: refunded,
        }
        return {t: self._after_commit(inbox.handler(h)) for t, h in table.items()}

    def _after_commit(self, handler: Handler) -> Handler:
        async def handle(event: Event[Message]) -> Outcome | None:
            self._reservations.touched.clear()
            try:
                return await handler(event)
            finally:
                # Also after a rollback: dropping a cache entry is always safe.
                self._invalidate(self._reservations.touched)

        return handle
