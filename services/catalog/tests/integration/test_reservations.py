"""The reservation protocol over Kafka: commerce's order events in, catalog.stock.v1 answers out."""

import asyncio
from collections.abc import Callable

import pytest
from catalog_steps import RunningCatalog, create_product, order, publish_placed, register
from confluent_kafka import Message

from shopstream.catalog.v1 import catalog_service_pb2 as pb
from shopstream.catalog.v1 import events_pb2
from shopstream.commerce.v1 import order_events_pb2, order_pb2
from shopstream_platform.kafka.cloudevents import headers_dict
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.settings import KafkaSettings
from shopstream_platform.testing import read_all_async

pytestmark = pytest.mark.integration


def from_catalog(catalog: RunningCatalog, record: Message) -> bool:
    """Published by this test's catalog: others on the shared broker answer the same orders."""
    source = f"shopstream/{catalog.runtime.name}".encode()
    return dict(record.headers() or []).get("ce_source") == source


async def answers_for(
    catalog: RunningCatalog, kafka: KafkaSettings, order_ids: set[str], expect: int
) -> dict[str, list[str]]:
    """ce_types this catalog published on catalog.stock.v1 per order id (other catalogs on the
    shared broker read the same orders and answer them too)."""

    def ours(record: Message) -> bool:
        return (record.key() or b"").decode() in order_ids and from_catalog(catalog, record)

    records = await read_all_async(
        kafka,
        "catalog.stock.v1",
        expect=expect,
        timeout_s=60,
        match=ours,
        since_ms=catalog.since_ms,
    )
    result: dict[str, list[str]] = {}
    for record in records:
        result.setdefault((record.key() or b"").decode(), []).append(
            headers_dict(record.headers())["ce_type"]
        )
    return result


async def wait_consumed(catalog: RunningCatalog, count: float, timeout_s: float = 60) -> None:
    name = catalog.runtime.name
    labels = {"service": name, "topic": "commerce.orders.v1", "group": f"{name}.orders"}

    def consumed() -> float:
        return sum(
            catalog.metric("shopstream_events_consumed_total", {**labels, "outcome": o})
            for o in ("processed", "duplicate", "ignored", "dead_lettered")
        )

    deadline = asyncio.get_running_loop().time() + timeout_s
    while consumed() < count:
        assert asyncio.get_running_loop().time() < deadline, f"consumed {consumed()} of {count}"
        await asyncio.sleep(0.1)


async def stock_of(catalog: RunningCatalog, product_id: str) -> tuple[int, int]:
    product = (
        await catalog.stub.GetProduct(pb.GetProductRequest(product_id=product_id), timeout=10)
    ).product
    [sku] = product.skus
    return sum(level.on_hand for level in sku.stock), sum(level.reserved for level in sku.stock)


async def test_fifty_orders_for_ten_units_reserve_exactly_ten_and_replays_change_nothing(
    catalog,
    kafka_settings,
    ids: Callable[[str], str],  # type: ignore[no-untyped-def]
) -> None:
    seller = ids("seller")
    await register(catalog, seller)
    product = await create_product(catalog, seller, stock=10)
    sku = product.skus[0].sku_id
    orders = [order(ids("ord"), [(sku, product.product_id, seller, 1)]) for _ in range(50)]
    order_ids = {o.order_id for o in orders}

    producer = EventProducer(kafka_settings, "shopstream/commerce-test")
    metas = await asyncio.gather(
        *(
            producer.publish_and_wait(
                "commerce.orders.v1", o.order_id, order_events_pb2.OrderPlaced(order=o)
            )
            for o in orders
        )
    )
    answers = await answers_for(catalog, kafka_settings, order_ids, expect=50)
    kinds = [types[0] for types in answers.values()]
    assert len(answers) == 50 and all(len(t) == 1 for t in answers.values())
    assert kinds.count("shopstream.catalog.v1.StockReserved") == 10
    assert kinds.count("shopstream.catalog.v1.StockReservationRejected") == 40
    assert await stock_of(catalog, product.product_id) == (10, 10)
    base = catalog.metric(
        "shopstream_events_consumed_total",
        {
            "service": catalog.runtime.name,
            "topic": "commerce.orders.v1",
            "group": f"{catalog.runtime.name}.orders",
            "outcome": "processed",
        },
    )

    # Publish them all again: the same events (same ce_id) and replays with new ids.
    for o, meta in zip(orders, metas, strict=True):
        await producer.publish_and_wait(
            "commerce.orders.v1", o.order_id, order_events_pb2.OrderPlaced(order=o), meta=meta
        )
        await publish_placed(producer, o)
    await wait_consumed(catalog, base + 100)
    assert await stock_of(catalog, product.product_id) == (10, 10)
    assert (
        len(
            await read_all_async(
                kafka_settings,
                "catalog.stock.v1",
                expect=51,
                timeout_s=3,
                match=lambda r: (r.key() or b"").decode() in order_ids and from_catalog(catalog, r),
                since_ms=catalog.since_ms,
            )
        )
        == 50
    )

    # Cancel three reserved orders, expire one, ship two: released and committed.
    reserved = [o for o in orders if answers[o.order_id][0].endswith("StockReserved")]
    for o in reserved[:3]:
        await producer.publish_and_wait(
            "commerce.orders.v1", o.order_id, order_events_pb2.OrderCancelled(order=o)
        )
    await producer.publish_and_wait(
        "commerce.orders.v1", reserved[3].order_id, order_events_pb2.OrderExpired(order=reserved[3])
    )
    for o in reserved[4:6]:
        await producer.publish_and_wait(
            "commerce.orders.v1", o.order_id, order_events_pb2.OrderShipped(order=o)
        )
    # A cancel of a rejected order releases nothing.
    rejected = next(o for o in orders if answers[o.order_id][0].endswith("Rejected"))
    await producer.publish_and_wait(
        "commerce.orders.v1", rejected.order_id, order_events_pb2.OrderCancelled(order=rejected)
    )
    producer.close()

    after = await answers_for(catalog, kafka_settings, order_ids, expect=56)
    released = [k for k, v in after.items() if "shopstream.catalog.v1.StockReleased" in v]
    committed = [k for k, v in after.items() if "shopstream.catalog.v1.StockCommitted" in v]
    assert sorted(released) == sorted(o.order_id for o in reserved[:4])
    assert sorted(committed) == sorted(o.order_id for o in reserved[4:6])
    # on-hand 10 - 2 shipped; reserved 10 - 4 released - 2 shipped.
    assert await stock_of(catalog, product.product_id) == (8, 4)
    assert catalog.metric("shopstream_catalog_reservations_total", {"outcome": "rejected"}) >= 40


async def test_rejection_names_the_sku_and_reserves_nothing_of_a_multi_line_order(
    catalog,
    kafka_settings,
    ids: Callable[[str], str],  # type: ignore[no-untyped-def]
) -> None:
    seller = ids("seller")
    await register(catalog, seller)
    plenty = await create_product(catalog, seller, stock=100)
    scarce = await create_product(catalog, seller, stock=1)
    o = order(
        ids("ord"),
        [
            (plenty.skus[0].sku_id, plenty.product_id, seller, 5),
            (scarce.skus[0].sku_id, scarce.product_id, seller, 2),
        ],
    )
    producer = EventProducer(kafka_settings, "shopstream/commerce-test")
    await publish_placed(producer, o)
    producer.close()
    [record] = await read_all_async(
        kafka_settings,
        "catalog.stock.v1",
        expect=1,
        timeout_s=60,
        match=lambda r: r.key() == o.order_id.encode() and from_catalog(catalog, r),
        since_ms=catalog.since_ms,
    )
    rejection = events_pb2.StockReservationRejected.FromString(record.value() or b"")
    assert rejection.sku_id == scarce.skus[0].sku_id
    assert rejection.reason == events_pb2.REJECTION_REASON_OUT_OF_STOCK
    assert await stock_of(catalog, plenty.product_id) == (100, 0)


async def test_a_refund_before_shipping_releases_what_will_never_ship_once(
    catalog,
    kafka_settings,
    ids: Callable[[str], str],  # type: ignore[no-untyped-def]
) -> None:
    seller = ids("seller")
    await register(catalog, seller)
    product = await create_product(catalog, seller, stock=10)
    sku = product.skus[0].sku_id
    refunded, partly, shipped = (
        order(ids("ord"), [(sku, product.product_id, seller, quantity)]) for quantity in (3, 2, 1)
    )
    order_ids = {refunded.order_id, partly.order_id, shipped.order_id}
    producer = EventProducer(kafka_settings, "shopstream/commerce-test")
    for o in (refunded, partly, shipped):
        await publish_placed(producer, o)
    await answers_for(catalog, kafka_settings, order_ids, expect=3)
    assert await stock_of(catalog, product.product_id) == (10, 6)

    def refund(o: order_pb2.Order, state: int, units: int) -> order_events_pb2.OrderRefunded:
        after = order_pb2.Order()
        after.CopyFrom(o)
        after.state = state  # type: ignore[assignment]
        after.lines[0].refunded_quantity = units
        message = order_events_pb2.OrderRefunded(order=after, refund_id=ids("rfd"))
        message.lines.add(line_id=o.lines[0].line_id, sku_id=sku, quantity=units)
        return message

    await producer.publish_and_wait(
        "commerce.orders.v1", shipped.order_id, order_events_pb2.OrderShipped(order=shipped)
    )
    for o, state, units in (
        (refunded, order_pb2.ORDER_STATE_REFUNDED, 3),  # paid, refunded in full, never shipped
        (partly, order_pb2.ORDER_STATE_PARTIALLY_REFUNDED, 1),  # 1 of 2 released, 1 may ship
        (shipped, order_pb2.ORDER_STATE_REFUNDED, 1),  # a return after shipping: stock is gone
    ):
        await producer.publish_and_wait("commerce.orders.v1", o.order_id, refund(o, state, units))
    # A replay under a new event id releases nothing twice.
    await producer.publish_and_wait(
        "commerce.orders.v1",
        refunded.order_id,
        refund(refunded, order_pb2.ORDER_STATE_REFUNDED, 3),
    )
    producer.close()

    after = await answers_for(catalog, kafka_settings, order_ids, expect=6)
    assert after[refunded.order_id] == [
        "shopstream.catalog.v1.StockReserved",
        "shopstream.catalog.v1.StockReleased",
    ]
    assert after[partly.order_id] == [
        "shopstream.catalog.v1.StockReserved",
        "shopstream.catalog.v1.StockReleased",
    ]
    assert after[shipped.order_id] == [
        "shopstream.catalog.v1.StockReserved",
        "shopstream.catalog.v1.StockCommitted",
    ]
    # 3 placed, 1 shipped, 3 refunds, 1 replay (at least: other tests' orders count too; it was
    # 9, which only a shared broker's foreign traffic ever reached)
    await wait_consumed(catalog, 8)
    # on-hand 10 - 1 shipped; reserved: only the unit of the partly refunded order still to ship.
    assert await stock_of(catalog, product.product_id) == (9, 1)
    released = events_pb2.StockReleased.FromString(
        (
            await read_all_async(
                kafka_settings,
                "catalog.stock.v1",
                expect=2,
                timeout_s=10,
                match=lambda r: r.key() == refunded.order_id.encode() and from_catalog(catalog, r),
                since_ms=catalog.since_ms,
            )
        )[1].value()
        or b""
    )
    assert released.cause == "refunded" and released.lines[0].quantity == 3
    assert not released.partial
    partial = events_pb2.StockReleased.FromString(
        (
            await read_all_async(
                kafka_settings,
                "catalog.stock.v1",
                expect=2,
                timeout_s=10,
                match=lambda r: r.key() == partly.order_id.encode() and from_catalog(catalog, r),
                since_ms=catalog.since_ms,
            )
        )[1].value()
        or b""
    )
    assert partial.partial and partial.cause == "refunded"
    assert [(line.line_id, line.quantity) for line in partial.lines] == [
        (partly.lines[0].line_id, 1)
    ]
    # The partly refunded order ships its one remaining unit: committed, nothing left reserved.
    shipping = order_pb2.Order()
    shipping.CopyFrom(partly)
    shipping.lines[0].refunded_quantity = 1
    again = EventProducer(kafka_settings, "shopstream/commerce-test")
    await again.publish_and_wait(
        "commerce.orders.v1", partly.order_id, order_events_pb2.OrderShipped(order=shipping)
    )
    again.close()
    await answers_for(catalog, kafka_settings, order_ids, expect=7)
    assert await stock_of(catalog, product.product_id) == (8, 0)
