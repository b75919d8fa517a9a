"""Every order state change, written once: the domain allows it, the row moves under an
optimistic version check, and the event goes to the outbox in the same transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream_commerce.domain import limits
from shopstream_commerce.domain import orders as saga
from shopstream_commerce.domain.limits import bounded
from shopstream_commerce.domain.orders import OrderState
from shopstream_commerce.domain.records import OrderRecord
from shopstream_commerce.store import repository as repo
from shopstream_commerce.usecases.context import Deps
from shopstream_platform.errors import ConflictError, InvalidArgumentError, NotFoundError

ORDERS_TOPIC = "commerce.orders.v1"


class OrderTransitions:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def load(self, session: AsyncSession, order_id: str) -> OrderRecord:
        """The order, locked for the transaction (PostgreSQL); NOT_FOUND when there is none."""
        if not order_id:
            raise InvalidArgumentError("order_id", "is required")
        bounded("order_id", order_id, limits.ID)
        order = await self.find(session, order_id)
        if order is None:
            raise NotFoundError("order", order_id)
        return order

    async def find(self, session: AsyncSession, order_id: str) -> OrderRecord | None:
        found = await repo.load_orders(session, [order_id], for_update=not self.deps.db.is_sqlite)
        return found.get(order_id)

    async def apply(
        self,
        session: AsyncSession,
        order: OrderRecord,
        action: str,
        event: Callable[[OrderRecord], Message],
        *,
        state: OrderState | None = None,
        **changes: Any,
    ) -> OrderRecord:
        """Move `order` by `action` (to `state` when the action computes it) and publish
        `event(updated order)`; FAILED_PRECONDITION when not allowed, ABORTED when changed
        concurrently."""
        target = saga.transition(action, order.state, order.order_id) or state
        assert target is not None
        updated = replace(
            order, state=target, version=order.version + 1, updated_at=self.deps.now(), **changes
        )
        if not await repo.update_order(session, updated, order.version):
            raise ConflictError(f"order {order.order_id} changed concurrently; retry")
        await self.deps.outbox.add(session, ORDERS_TOPIC, order.order_id, event(updated))
        self.deps.metrics.orders.labels(target.name).inc()
        return updated
