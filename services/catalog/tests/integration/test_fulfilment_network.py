"""Fulfilled by the platform, from outside: platform warehouses, SKU enrolment, inbound
shipments (only received units are sellable, also while orders race the receipt), routing by
the buyer's region, and returned units restocked exactly once (issue 20)."""

import asyncio
import time
from collections.abc import Callable

import grpc
import pytest
from catalog_steps import RunningCatalog, create_product, gbp, order, register

from shopstream.catalog.v1 import catalog_pb2, events_pb2
from shopstream.catalog.v1 import catalog_service_pb2 as pb
from shopstream.commerce.v1 import order_events_pb2, order_pb2
from shopstream_platform.kafka.cloudevents import headers_dict
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.settings import KafkaSettings
from shopstream_platform.testing import read_since

pytestmark = pytest.mark.integration


def admin(catalog: RunningCatalog) -> dict[str, object]:
    return {"metadata": catalog.auth("admin", "ops"), "timeout": 10}


def as_seller(catalog: RunningCatalog, seller: str) -> dict[str, object]:
    return {"metadata": catalog.auth("seller", seller), "timeout": 10}


async def platform_warehouse(
    catalog: RunningCatalog, ids: Callable[[str], str], region: str = "GB-MAN"
) -> str:
    warehouse = ids("fbt")
    await catalog.stub.RegisterWarehouse(
        pb.RegisterWarehouseRequest(
            warehouse_id=warehouse, display_name="FBT North", region=region, platform=True
        ),
        **admin(catalog),  # type: ignore[arg-type]
    )
    return warehouse


async def available(catalog: RunningCatalog, product_id: str) -> int:
    got = await catalog.stub.GetProduct(pb.GetProductRequest(product_id=product_id), timeout=10)
    return sum(s.available for s in got.product.skus)


def ours(catalog: RunningCatalog, kafka: KafkaSettings, topic: str, since_ms: int) -> list:  # type: ignore[type-arg]
    """(ce_type name, key, value) of what this test's catalog published on the topic."""
    source = f"shopstream/{catalog.runtime.name}".encode()
    found = []
    for record in read_since(kafka, topic, since_ms):
        headers = dict(record.headers() or [])
        if headers.get("ce_source") != source:
            continue
        kind = headers_dict(record.headers())["ce_type"].rsplit(".", 1)[-1]
        found.append((kind, (record.key() or b"").decode(), record.value() or b""))
    return found


async def answers(
    catalog: RunningCatalog, kafka: KafkaSettings, order_ids: set[str], since_ms: int
) -> dict[str, tuple[str, bytes]]:
    """This catalog's answer to each order (waits until every order has one)."""
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        found = {
            key: (kind, value)
            for kind, key, value in await asyncio.to_thread(
                ours, catalog, kafka, "catalog.stock.v1", since_ms
            )
            if key in order_ids
        }
        if len(found) == len(order_ids):
            return found
        assert asyncio.get_running_loop().time() < deadline, f"{len(found)} of {len(order_ids)}"
        await asyncio.sleep(0.5)


async def test_inbound_units_become_sellable_only_when_received_also_under_concurrent_orders(
    catalog: RunningCatalog, kafka_settings: KafkaSettings, ids: Callable[[str], str]
) -> None:
    since_ms = int(time.time() * 1000) - 1_000
    seller = ids("seller")
    await register(catalog, seller)
    warehouse = await platform_warehouse(catalog, ids)
    product = await create_product(catalog, seller, stock=0)
    sku = product.skus[0].sku_id

    # Not enrolled: no inbound. Enrolled: 100 announced, nothing sellable yet.
    with pytest.raises(grpc.aio.AioRpcError) as not_enrolled:
        await catalog.stub.AnnounceInbound(
            pb.AnnounceInboundRequest(
                seller_id=seller,
                warehouse_id=warehouse,
                lines=[pb.InboundLineRequest(sku_id=sku, quantity=100)],
            ),
            **as_seller(catalog, seller),  # type: ignore[arg-type]
        )
    assert not_enrolled.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await catalog.stub.EnrolSku(
        pb.EnrolSkuRequest(sku_id=sku, warehouse_id=warehouse),
        **as_seller(catalog, seller),  # type: ignore[arg-type]
    )
    announced = (
        await catalog.stub.AnnounceInbound(
            pb.AnnounceInboundRequest(
                seller_id=seller,
                warehouse_id=warehouse,
                lines=[pb.InboundLineRequest(sku_id=sku, quantity=100)],
                idempotency_key="asn-1",
            ),
            **as_seller(catalog, seller),  # type: ignore[arg-type]
        )
    ).shipment
    assert announced.state == catalog_pb2.INBOUND_STATE_ANNOUNCED
    assert await available(catalog, product.product_id) == 0

    # Orders of 4 units race the receipt: before it they find nothing, after it only the 95.
    producer = EventProducer(kafka_settings, "shopstream/commerce-test")
    orders = [order(ids("ord"), [(sku, product.product_id, seller, 4)]) for _ in range(30)]

    async def place(o: order_pb2.Order) -> None:
        await producer.publish_and_wait(
            "commerce.orders.v1", o.order_id, order_events_pb2.OrderPlaced(order=o)
        )

    early = [asyncio.create_task(place(o)) for o in orders[:10]]
    await asyncio.gather(*early)
    early_answers = await answers(
        catalog, kafka_settings, {o.order_id for o in orders[:10]}, since_ms
    )
    assert {kind for kind, _ in early_answers.values()} == {"StockReservationRejected"}

    racing = [asyncio.create_task(place(o)) for o in orders[10:]]
    received = (
        await catalog.stub.ReceiveInbound(
            pb.ReceiveInboundRequest(
                inbound_id=announced.inbound_id,
                received=[pb.InboundLineRequest(sku_id=sku, quantity=95)],
            ),
            **admin(catalog),  # type: ignore[arg-type]
        )
    ).shipment
    await asyncio.gather(*racing)
    late_answers = await answers(
        catalog, kafka_settings, {o.order_id for o in orders[10:]}, since_ms
    )
    reserved = [k for k, _ in late_answers.values() if k == "StockReserved"]
    assert len(reserved) <= 23  # 95 // 4: never more than what was received
    assert await available(catalog, product.product_id) == 95 - 4 * len(reserved)
    got = await catalog.stub.GetProduct(pb.GetProductRequest(product_id=product.product_id))
    [level] = [s for s in got.product.skus[0].stock if s.warehouse_id == warehouse]
    assert (level.on_hand, level.reserved) == (95, 4 * len(reserved))
    # Reserved in the platform's warehouse: the platform fulfils them.
    for kind, value in late_answers.values():
        if kind == "StockReserved":
            lines = events_pb2.StockReserved.FromString(value).lines
            assert [(ln.warehouse_id, ln.fulfilled_by_platform) for ln in lines] == [
                (warehouse, True)
            ]

    # 100 announced, 95 received: 95 on hand, the 5-unit discrepancy on the event.
    assert received.state == catalog_pb2.INBOUND_STATE_RECEIVED
    assert [(ln.announced, ln.received, ln.discrepancy) for ln in received.lines] == [(100, 95, -5)]
    events = ours(catalog, kafka_settings, "catalog.fulfilment.v1", since_ms)
    [received_event] = [
        events_pb2.InboundReceived.FromString(v) for k, _, v in events if k == "InboundReceived"
    ]
    assert received_event.discrepancy == -5
    assert received_event.shipment.lines[0].discrepancy == -5
    assert {k for k, _, _ in events} >= {"WarehouseRegistered", "SkuEnrolled", "InboundAnnounced"}

    # Received once; the platform's stock moves only through receipts.
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await catalog.stub.ReceiveInbound(
            pb.ReceiveInboundRequest(inbound_id=announced.inbound_id),
            **admin(catalog),  # type: ignore[arg-type]
        )
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as adjusted:
        await catalog.stub.AdjustStock(
            pb.AdjustStockRequest(sku_id=sku, warehouse_id=warehouse, delta=10),
            **as_seller(catalog, seller),  # type: ignore[arg-type]
        )
    assert adjusted.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as seller_receives:
        await catalog.stub.ReceiveInbound(
            pb.ReceiveInboundRequest(inbound_id=announced.inbound_id),
            **as_seller(catalog, seller),  # type: ignore[arg-type]
        )
    assert seller_receives.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # The same announcement again (same key) is the same shipment.
    again = await catalog.stub.AnnounceInbound(
        pb.AnnounceInboundRequest(
            seller_id=seller,
            warehouse_id=warehouse,
            lines=[pb.InboundLineRequest(sku_id=sku, quantity=100)],
            idempotency_key="asn-1",
        ),
        **as_seller(catalog, seller),  # type: ignore[arg-type]
    )
    assert again.shipment.inbound_id == announced.inbound_id
    assert catalog.metric("shopstream_catalog_inbound_units_total", {"kind": "missing"}) == 5


async def test_fulfilment_requests_are_validated_and_paged(
    catalog: RunningCatalog, ids: Callable[[str], str]
) -> None:
    seller = ids("seller")
    await register(catalog, seller)
    warehouse = await platform_warehouse(catalog, ids)
    product = await create_product(catalog, seller, stock=0)
    sku = product.skus[0].sku_id
    await catalog.stub.EnrolSku(
        pb.EnrolSkuRequest(sku_id=sku, warehouse_id=warehouse),
        **as_seller(catalog, seller),  # type: ignore[arg-type]
    )
    cases = [
        (
            pb.AnnounceInboundRequest(
                seller_id=seller,
                warehouse_id=warehouse,
                lines=[pb.InboundLineRequest(sku_id=sku, quantity=0)],
            ),
            "lines[0].quantity",
        ),
        (
            pb.AnnounceInboundRequest(
                seller_id=seller,
                warehouse_id=warehouse,
                lines=[pb.InboundLineRequest(sku_id=sku, quantity=10_000_001)],
            ),
            "lines[0].quantity",
        ),
        (
            pb.AnnounceInboundRequest(
                seller_id=seller,
                warehouse_id=warehouse,
                lines=[pb.InboundLineRequest(sku_id=f"s{i}", quantity=1) for i in range(101)],
            ),
            "lines",
        ),
        (
            pb.AnnounceInboundRequest(
                seller_id=seller,
                warehouse_id=warehouse,
                lines=[pb.InboundLineRequest(sku_id=sku, quantity=1)],
                idempotency_key="k" * 129,
            ),
            "idempotency_key",
        ),
    ]
    for request, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as invalid:
            await catalog.stub.AnnounceInbound(request, **as_seller(catalog, seller))  # type: ignore[arg-type]
        assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in (invalid.value.details() or ""), invalid.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as long_region:
        await catalog.stub.RegisterWarehouse(
            pb.RegisterWarehouseRequest(warehouse_id=ids("w"), region="R" * 33, platform=True),
            **admin(catalog),  # type: ignore[arg-type]
        )
    assert long_region.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "region" in (long_region.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as seller_platform:
        await catalog.stub.RegisterWarehouse(
            pb.RegisterWarehouseRequest(warehouse_id=ids("w"), platform=True),
            **as_seller(catalog, seller),  # type: ignore[arg-type]
        )
    assert seller_platform.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as stocked:
        await catalog.stub.CreateProduct(
            pb.CreateProductRequest(
                seller_id=seller,
                title="Scarf",
                category_id="fashion",
                brand="Acme",
                attributes={"material": "silk"},
                skus=[pb.NewSku(sku_code="x", price=gbp(1_000), stock={warehouse: 5})],
            ),
            **as_seller(catalog, seller),  # type: ignore[arg-type]
        )
    assert stocked.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "skus[0].stock" in (stocked.value.details() or "")

    # Three shipments, read back a page of one at a time, newest first.
    made = []
    for i in range(3):
        made.append(
            (
                await catalog.stub.AnnounceInbound(
                    pb.AnnounceInboundRequest(
                        seller_id=seller,
                        warehouse_id=warehouse,
                        lines=[pb.InboundLineRequest(sku_id=sku, quantity=i + 1)],
                    ),
                    **as_seller(catalog, seller),  # type: ignore[arg-type]
                )
            ).shipment.inbound_id
        )
    seen: list[str] = []
    token = ""
    while True:
        page = await catalog.stub.ListInbound(
            pb.ListInboundRequest(seller_id=seller, page={"page_size": 1, "page_token": token}),
            **as_seller(catalog, seller),  # type: ignore[arg-type]
        )
        seen += [s.inbound_id for s in page.shipments]
        token = page.page.next_page_token
        if not token:
            break
    assert seen == list(reversed(made))


async def test_reservation_routes_by_region_and_splits_only_when_needed(
    catalog: RunningCatalog, kafka_settings: KafkaSettings, ids: Callable[[str], str]
) -> None:
    since_ms = int(time.time() * 1000) - 1_000
    seller = ids("seller")
    await register(catalog, seller)
    lnd, man = ids("lnd"), ids("man")
    for warehouse, region in ((lnd, "GB-LND"), (man, "GB-MAN")):
        await catalog.stub.RegisterWarehouse(
            pb.RegisterWarehouseRequest(
                warehouse_id=warehouse, region=region, seller_id=seller, display_name=region
            ),
            **as_seller(catalog, seller),  # type: ignore[arg-type]
        )
    created = await catalog.stub.CreateProduct(
        pb.CreateProductRequest(
            seller_id=seller,
            title="Silk scarf",
            category_id="fashion",
            brand="Acme",
            attributes={"material": "silk"},
            skus=[
                pb.NewSku(sku_code="a", price=gbp(1_000), stock={lnd: 2, man: 5}),
                pb.NewSku(sku_code="b", price=gbp(1_000), stock={man: 5}),
            ],
        ),
        **as_seller(catalog, seller),  # type: ignore[arg-type]
    )
    product = (
        await catalog.stub.ReviewListing(
            pb.ReviewListingRequest(
                product_id=created.product.product_id, decision=pb.REVIEW_DECISION_APPROVE
            ),
            **admin(catalog),  # type: ignore[arg-type]
        )
    ).product
    a, b = (s.sku_id for s in product.skus)
    pid = product.product_id
    # For a London buyer, in turn: a alone from London (a: London 1, Manchester 5 left); a and
    # b from Manchester, which has both: no split (a: 1, 4); 3 of a from Manchester, the only
    # one with 3 (a: 1, 1); 2 of a: no warehouse has 2, so split.
    cases = {
        "alone": [(a, pid, seller, 1)],
        "both": [(a, pid, seller, 1), (b, pid, seller, 1)],
        "three": [(a, pid, seller, 3)],
        "split": [(a, pid, seller, 2)],
    }
    producer = EventProducer(kafka_settings, "shopstream/commerce-test")
    placed = {}
    for name, lines in cases.items():
        o = order(ids(f"ord-{name}"), lines)
        o.ship_to_region = "GB-LND"
        placed[name] = o
        await producer.publish_and_wait(
            "commerce.orders.v1", o.order_id, order_events_pb2.OrderPlaced(order=o)
        )
        await answers(catalog, kafka_settings, {o.order_id}, since_ms)
    got = await answers(catalog, kafka_settings, {o.order_id for o in placed.values()}, since_ms)
    routed = {
        name: [
            (ln.warehouse_id, ln.quantity)
            for ln in events_pb2.StockReserved.FromString(got[o.order_id][1]).lines
        ]
        for name, o in placed.items()
    }
    assert routed["alone"] == [(lnd, 1)]
    assert routed["both"] == [(man, 1), (man, 1)]
    assert routed["three"] == [(man, 3)]
    assert sorted(routed["split"]) == sorted([(lnd, 1), (man, 1)])
    assert await available(catalog, pid) == 4  # b's 4 left in Manchester
