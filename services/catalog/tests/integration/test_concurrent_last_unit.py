"""The last unit under truly concurrent reservations: exactly one order wins, on both databases.

The Kafka test serialises orders through one consumer; several catalog replicas would not. Here
twenty reservations run at once on separate connections through the same handler code.
"""

import asyncio
from collections.abc import Callable

import pytest
from catalog_steps import RunningCatalog, create_product, order, register
from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream.commerce.v1 import order_events_pb2
from shopstream_catalog.store import repository as repo
from shopstream_catalog.usecases.reservations import Reservations
from shopstream_platform.kafka.events import Event
from shopstream_platform.kafka.producer import EventProducer

pytestmark = pytest.mark.integration


async def test_exactly_one_of_twenty_concurrent_orders_gets_the_last_unit(
    catalog: RunningCatalog, ids: Callable[[str], str]
) -> None:
    seller = ids("seller")
    await register(catalog, seller)
    product = await create_product(catalog, seller, stock=1)
    sku = product.skus[0].sku_id
    # Each "replica" has its own use-case object; all share the database.
    replicas = [Reservations(catalog.app) for _ in range(20)]
    meta_source = EventProducer(catalog.runtime.settings.kafka, "shopstream/commerce-test")
    events: list[Event[Message]] = []
    for _ in replicas:
        placed = order_events_pb2.OrderPlaced(
            order=order(ids("ord"), [(sku, product.product_id, seller, 1)])
        )
        events.append(
            Event(
                "commerce.orders.v1",
                0,
                0,
                placed.order.order_id,
                meta_source.meta_for(placed),
                placed,
            )
        )
    meta_source.close()
    inbox = catalog.runtime.inbox("concurrency-test")

    async def attempt(reservations: Reservations, event: Event[Message]) -> None:
        async def placed(e: Event[Message], session: AsyncSession) -> None:
            assert isinstance(e.message, order_events_pb2.OrderPlaced)
            await reservations.placed(session, e.message.order)

        handler = inbox.handler(placed)
        for _ in range(20):  # SQLite may answer "database is locked" under contention: retry
            try:
                await handler(event)
                return
            except Exception as exc:
                if "locked" not in str(exc):
                    raise
                await asyncio.sleep(0.05)

    await asyncio.gather(*(attempt(h, e) for h, e in zip(replicas, events, strict=True)))

    async with catalog.app.db.read() as session:
        states = [await repo.reservation_state(session, e.message.order.order_id) for e in events]  # type: ignore[attr-defined]
        level = await repo.stock_level(session, sku, "w1")
    assert states.count("RESERVED") == 1
    assert states.count("REJECTED") == 19
    assert (level.on_hand, level.reserved) == (1, 1)
