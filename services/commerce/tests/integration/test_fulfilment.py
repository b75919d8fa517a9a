"""Fulfilment through gRPC and the topics: packages per warehouse, the sandbox carrier's labels
and tracking, and the order's state following its packages (issue 20)."""

import asyncio
import time
from collections.abc import Callable

import grpc
import pytest
from commerce_steps import Shop, call_kwargs

from shopstream.catalog.v1 import catalog_pb2
from shopstream.catalog.v1 import catalog_service_pb2 as cpb
from shopstream.catalog.v1 import events_pb2 as catalog_events
from shopstream.commerce.v1 import commerce_service_pb2 as pb
from shopstream.commerce.v1 import commissions_pb2 as cmpb
from shopstream.commerce.v1 import order_events_pb2 as ev
from shopstream.commerce.v1 import order_pb2
from shopstream_catalog.settings import QualityThresholds
from shopstream_platform.kafka.cloudevents import headers_dict
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.testing import read_since

pytestmark = pytest.mark.integration

OS = order_pb2
FAST_CARRIER = {
    "carrier_pickup_s": 0.2,
    "carrier_transit_s": 0.8,
    "carrier_promise_s": 30.0,
    "carrier_late_by_s": 1.0,
    "carrier_lost_share": 0.0,
    "carrier_late_share": 0.0,
}


def types_of(shop: Shop, topic: str, since_ms: int, order_id: str) -> list[tuple[str, bytes]]:
    """(ce_type's message name, value) of what this test's commerce published for the order."""
    found = []
    for record in read_since(shop.commerce.runtime.settings.kafka, topic, since_ms):
        if record.key() != order_id.encode():
            continue
        kind = headers_dict(record.headers())["ce_type"].rsplit(".", 1)[-1]
        found.append((kind, record.value() or b""))
    return found


async def packages_of(shop: Shop, order: order_pb2.Order) -> list[order_pb2.Package]:
    got = await shop.stub.GetOrder(
        pb.GetOrderRequest(order_id=order.order_id), **call_kwargs(shop, "buyer", order.buyer_id)
    )
    return list(got.packages)


async def wait_package(
    shop: Shop, order: order_pb2.Order, package_id: str, state: int, timeout_s: float = 30
) -> order_pb2.Package:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        found = {p.package_id: p for p in await packages_of(shop, order)}
        if found[package_id].state == state:
            return found[package_id]
        assert asyncio.get_running_loop().time() < deadline, f"{package_id} stuck: {found}"
        await asyncio.sleep(0.1)


async def paid_two_warehouse_order(
    shop: Shop, ids: Callable[[str], str]
) -> tuple[str, order_pb2.Order, list[order_pb2.Package]]:
    seller, buyer = ids("seller"), ids("buyer")
    product = await shop.listed_skus(seller, [{"w1": 5}, {"w2": 5}])
    a, b = (s.sku_id for s in product.skus)
    order = await shop.place_lines(buyer, [(a, 1), (b, 2)], region="GB-LND")
    assert order.ship_to_region == "GB-LND"
    await shop.wait_state(order, OS.ORDER_STATE_RESERVED)
    packages = await packages_of(shop, order)
    await shop.stub.PayOrder(
        pb.PayOrderRequest(order_id=order.order_id, card_token="tok_visa"),
        **call_kwargs(shop, "buyer", buyer),
    )
    return seller, order, packages


@pytest.mark.parametrize("commerce_overrides", [FAST_CARRIER])
async def test_two_warehouses_ship_as_two_packages_and_deliver_when_both_are(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    since_ms = int(time.time() * 1000) - 1_000
    seller, order, packages = await paid_two_warehouse_order(shop, ids)
    # One package per warehouse, each with its own lines, waiting to ship.
    assert sorted(p.warehouse_id for p in packages) == ["w1", "w2"]
    assert all(p.state == OS.PACKAGE_STATE_AWAITING_SHIPMENT for p in packages)
    assert {p.warehouse_id: [(ln.quantity) for ln in p.lines] for p in packages} == {
        "w1": [1],
        "w2": [2],
    }
    first, second = sorted(packages, key=lambda p: p.warehouse_id)

    # The seller ships the first through the platform's sandbox carrier: label and tracking.
    shipped = await shop.stub.ShipPackage(
        pb.ShipPackageRequest(package_id=first.package_id), **call_kwargs(shop, "seller", seller)
    )
    assert shipped.package.carrier == "sandbox"
    assert shipped.package.tracking_number.startswith("SBX")
    assert shipped.package.label
    assert shipped.order.state == OS.ORDER_STATE_PARTIALLY_SHIPPED
    # The carrier delivers it; the order is not DELIVERED while the other package waits.
    await wait_package(shop, order, first.package_id, OS.PACKAGE_STATE_DELIVERED)
    still = await shop.wait_state(order, OS.ORDER_STATE_PARTIALLY_SHIPPED)
    assert still.order.state == OS.ORDER_STATE_PARTIALLY_SHIPPED

    # The second ships: SHIPPED (catalog commits), then DELIVERED once the carrier delivers it.
    second_shipped = await shop.stub.ShipPackage(
        pb.ShipPackageRequest(package_id=second.package_id), **call_kwargs(shop, "seller", seller)
    )
    assert second_shipped.package.tracking_number != shipped.package.tracking_number
    await shop.wait_state(order, OS.ORDER_STATE_DELIVERED)
    done = await packages_of(shop, order)
    assert all(p.state == OS.PACKAGE_STATE_DELIVERED and not p.late for p in done)
    assert all(p.HasField("delivered_at") and p.HasField("deliver_by") for p in done)

    await shop.commerce.published()
    fulfilment = types_of(shop, "commerce.fulfilment.v1", since_ms, order.order_id)
    kinds = [k for k, _ in fulfilment]
    assert kinds.count("PackageCreated") == 2 and kinds.count("PackageShipped") == 2
    assert kinds.count("PackageDelivered") == 2
    tracking = {
        ev.PackageShipped.FromString(v).package.tracking_number
        for k, v in fulfilment
        if k == "PackageShipped"
    }
    assert tracking == {shipped.package.tracking_number, second_shipped.package.tracking_number}
    order_kinds = [k for k, _ in types_of(shop, "commerce.orders.v1", since_ms, order.order_id)]
    assert order_kinds[-1] == "OrderDelivered" and order_kinds.count("OrderDelivered") == 1
    assert order_kinds.index("OrderPartiallyShipped") < order_kinds.index("OrderShipped")
    # The last package delivered comes before the order's delivery.
    delivered = [
        ev.PackageDelivered.FromString(v).package.delivered_at.ToDatetime()
        for k, v in fulfilment
        if k == "PackageDelivered"
    ]
    order_delivered = ev.OrderDelivered.FromString(
        next(
            v
            for k, v in types_of(shop, "commerce.orders.v1", since_ms, order.order_id)
            if k == "OrderDelivered"
        )
    )
    assert max(delivered) <= order_delivered.delivered_at.ToDatetime()
    # Metrics: two on-time deliveries, one from each warehouse.
    for warehouse in ("w1", "w2"):
        assert (
            shop.commerce.metric(
                "shopstream_commerce_package_outcomes_total",
                {"warehouse": warehouse, "outcome": "on_time"},
            )
            == 1
        )


@pytest.mark.parametrize("commerce_overrides", [FAST_CARRIER])
async def test_ship_order_ships_every_package_and_buyer_confirms(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    seller, order, _ = await paid_two_warehouse_order(shop, ids)
    shipped = await shop.stub.ShipOrder(
        pb.ShipOrderRequest(order_id=order.order_id, tracking_number="OWN-1"),
        **call_kwargs(shop, "seller", seller),
    )
    assert shipped.order.state == OS.ORDER_STATE_SHIPPED
    packages = await packages_of(shop, order)
    assert {(p.carrier, p.tracking_number, p.state) for p in packages} == {
        ("seller", "OWN-1", OS.PACKAGE_STATE_SHIPPED)
    }
    delivered = await shop.stub.ConfirmDelivery(
        pb.ConfirmDeliveryRequest(order_id=order.order_id),
        **call_kwargs(shop, "buyer", order.buyer_id),
    )
    assert delivered.order.state == OS.ORDER_STATE_DELIVERED
    assert all(p.state == OS.PACKAGE_STATE_DELIVERED for p in await packages_of(shop, order))


async def test_fulfilment_requests_are_validated_and_paged(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    seller, order, packages = await paid_two_warehouse_order(shop, ids)
    with pytest.raises(grpc.aio.AioRpcError) as long_tracking:
        await shop.stub.ShipPackage(
            pb.ShipPackageRequest(package_id=packages[0].package_id, tracking_number="T" * 129),
            **call_kwargs(shop, "seller", seller),
        )
    assert long_tracking.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "tracking_number" in (long_tracking.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as long_region:
        await shop.stub.PlaceOrder(
            pb.PlaceOrderRequest(
                buyer_id=order.buyer_id,
                idempotency_key="k",
                ship_to_region="R" * 33,
                lines=[pb.OrderLineRequest(sku_id=order.lines[0].sku_id, quantity=1)],
            ),
            **call_kwargs(shop, "buyer", order.buyer_id),
        )
    assert long_region.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ship_to_region" in (long_region.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as other_seller:
        await shop.stub.ShipPackage(
            pb.ShipPackageRequest(package_id=packages[0].package_id),
            **call_kwargs(shop, "seller", "someone-else"),
        )
    assert other_seller.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as both:
        await shop.stub.ListPackages(
            pb.ListPackagesRequest(order_id=order.order_id, seller_id=seller),
            **call_kwargs(shop, "seller", seller),
        )
    assert both.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    seen: list[str] = []
    token = ""
    while True:
        page = await shop.stub.ListPackages(
            pb.ListPackagesRequest(seller_id=seller, page={"page_size": 1, "page_token": token}),
            **call_kwargs(shop, "seller", seller),
        )
        seen += [p.package_id for p in page.packages]
        token = page.page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(p.package_id for p in packages)


async def fbt_stock(shop: Shop, ids: Callable[[str], str], units: int) -> tuple[str, str, str, str]:
    """A seller's SKU enrolled in a platform warehouse with `units` received there:
    (seller, warehouse, product id, SKU id)."""
    seller = ids("seller")
    warehouse = ids("fbt")
    await shop.catalog_stub.RegisterWarehouse(
        cpb.RegisterWarehouseRequest(
            warehouse_id=warehouse, display_name="FBT", region="GB-MAN", platform=True
        ),
        **call_kwargs(shop, "admin", "ops"),
    )
    product = await shop.listed_skus(seller, [{}], price=1_000)
    sku = product.skus[0].sku_id
    await shop.catalog_stub.EnrolSku(
        cpb.EnrolSkuRequest(sku_id=sku, warehouse_id=warehouse),
        **call_kwargs(shop, "seller", seller),
    )
    inbound = await shop.catalog_stub.AnnounceInbound(
        cpb.AnnounceInboundRequest(
            seller_id=seller,
            warehouse_id=warehouse,
            lines=[cpb.InboundLineRequest(sku_id=sku, quantity=units)],
        ),
        **call_kwargs(shop, "seller", seller),
    )
    await shop.catalog_stub.ReceiveInbound(
        cpb.ReceiveInboundRequest(
            inbound_id=inbound.shipment.inbound_id,
            received=[cpb.InboundLineRequest(sku_id=sku, quantity=units)],
        ),
        **call_kwargs(shop, "admin", "ops"),
    )
    return seller, warehouse, product.product_id, sku


async def wait_available(shop: Shop, product_id: str, units: int) -> None:
    for _ in range(300):
        if await shop.available(product_id) == units:
            return
        await asyncio.sleep(0.1)
    assert await shop.available(product_id) == units


@pytest.mark.parametrize(
    "commerce_overrides",
    [{**FAST_CARRIER, "fbt_fee_per_package_minor": 100, "fbt_fee_per_unit_minor": 50}],
)
async def test_platform_fulfils_an_enrolled_sku_charges_its_fees_and_restocks_a_return_once(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    since_ms = int(time.time() * 1000) - 1_000
    seller, warehouse, product_id, sku = await fbt_stock(shop, ids, 10)
    buyer = ids("buyer")
    order = await shop.place_lines(buyer, [(sku, 2)], region="GB-MAN")
    await shop.wait_state(order, OS.ORDER_STATE_RESERVED)
    [package] = await packages_of(shop, order)
    assert package.warehouse_id == warehouse and package.fulfilled_by_platform
    # Platform packages are the platform's to ship, not the seller's.
    with pytest.raises(grpc.aio.AioRpcError) as not_yours:
        await shop.stub.ShipPackage(
            pb.ShipPackageRequest(package_id=package.package_id),
            **call_kwargs(shop, "seller", seller),
        )
    assert not_yours.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await shop.stub.PayOrder(
        pb.PayOrderRequest(order_id=order.order_id, card_token="tok_visa"),
        **call_kwargs(shop, "buyer", buyer),
    )
    # Picked from the platform warehouse, shipped with the platform's carrier, delivered.
    await shop.wait_state(order, OS.ORDER_STATE_DELIVERED)
    [shipped] = await packages_of(shop, order)
    assert shipped.carrier == "sandbox" and shipped.tracking_number.startswith("SBX")
    await wait_available(shop, product_id, 8)

    # The fee (100 per package + 50 per unit) is on the seller's settlement.
    settlement = (
        await shop.stub.GetOrderSettlement(
            pb.GetOrderSettlementRequest(order_id=order.order_id),
            **call_kwargs(shop, "seller", seller),
        )
    ).settlement
    assert settlement.fulfilment_fee.amount_minor == 200
    assert settlement.net_payout.amount_minor == 2_000 - 100 - 200
    balance = await shop.stub.GetSellerBalance(
        pb.GetSellerBalanceRequest(seller_id=seller), **call_kwargs(shop, "seller", seller)
    )
    assert cmpb.SELLER_ENTRY_KIND_FULFILMENT_FEE in {e.kind for e in balance.entries}
    assert balance.balance.amount_minor == 1_700

    # One unit comes back to the platform warehouse; the platform receives and inspects it.
    line = order.lines[0].line_id
    requested = await shop.stub.RequestRefund(
        pb.RequestRefundRequest(
            order_id=order.order_id,
            lines=[pb.RefundLineRequest(line_id=line, quantity=1)],
            reason="too small",
            type=pb.AFTER_SALE_TYPE_RETURN_AND_REFUND,
        ),
        **call_kwargs(shop, "buyer", buyer),
    )
    refund_id = requested.refund.refund_id
    await shop.stub.ApproveRefund(
        pb.ApproveRefundRequest(refund_id=refund_id), **call_kwargs(shop, "seller", seller)
    )
    await shop.stub.ShipReturn(
        pb.ShipReturnRequest(refund_id=refund_id, tracking_number="RET-1"),
        **call_kwargs(shop, "buyer", buyer),
    )
    with pytest.raises(grpc.aio.AioRpcError) as seller_receives:
        await shop.stub.ReceiveReturn(
            pb.ReceiveReturnRequest(refund_id=refund_id, disposition=OS.RETURN_DISPOSITION_RESTOCK),
            **call_kwargs(shop, "seller", seller),
        )
    assert seller_receives.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as uninspected:
        await shop.stub.ReceiveReturn(
            pb.ReceiveReturnRequest(refund_id=refund_id), **call_kwargs(shop, "admin", "ops")
        )
    assert uninspected.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "disposition" in (uninspected.value.details() or "")
    received = await shop.stub.ReceiveReturn(
        pb.ReceiveReturnRequest(
            refund_id=refund_id,
            disposition=OS.RETURN_DISPOSITION_RESTOCK,
            disposition_reason="unopened",
        ),
        **call_kwargs(shop, "admin", "ops"),
    )
    assert received.refund.state == pb.REFUND_STATE_APPROVED
    # Sellable again: one unit, once.
    await wait_available(shop, product_id, 9)
    await shop.commerce.published()
    [(_, inspected)] = [
        (k, v)
        for k, v in types_of(shop, "commerce.fulfilment.v1", since_ms, order.order_id)
        if k == "ReturnInspected"
    ]
    event = ev.ReturnInspected.FromString(inspected)
    assert (event.warehouse_id, event.disposition, event.fulfilled_by_platform) == (
        warehouse,
        OS.RETURN_DISPOSITION_RESTOCK,
        True,
    )
    assert [(ln.sku_id, ln.quantity) for ln in event.lines] == [(sku, 1)]

    # The same inspection delivered again (a new event id, as after a producer retry): nothing
    # more goes on hand.
    catalog_name = shop.catalog.runtime.name
    labels = {
        "service": catalog_name,
        "topic": "commerce.fulfilment.v1",
        "group": f"{catalog_name}.fulfilment",
        "outcome": "processed",
    }
    before = shop.catalog.metric("shopstream_events_consumed_total", labels)
    producer = EventProducer(shop.commerce.runtime.settings.kafka, "shopstream/replayer")
    await producer.publish_and_wait("commerce.fulfilment.v1", order.order_id, event)
    for _ in range(300):
        if shop.catalog.metric("shopstream_events_consumed_total", labels) > before:
            break
        await asyncio.sleep(0.1)
    assert shop.catalog.metric("shopstream_events_consumed_total", labels) > before
    assert await shop.available(product_id) == 9
    assert shop.catalog.metric("shopstream_catalog_restocked_units_total", {}) == 1


@pytest.mark.parametrize("commerce_overrides", [{**FAST_CARRIER}])
async def test_a_written_off_return_stays_off_the_shelf(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    seller, _, product_id, sku = await fbt_stock(shop, ids, 3)
    buyer = ids("buyer")
    order = await shop.place_lines(buyer, [(sku, 1)])
    await shop.wait_state(order, OS.ORDER_STATE_RESERVED)
    await shop.stub.PayOrder(
        pb.PayOrderRequest(order_id=order.order_id, card_token="tok_visa"),
        **call_kwargs(shop, "buyer", buyer),
    )
    await shop.wait_state(order, OS.ORDER_STATE_DELIVERED)
    requested = await shop.stub.RequestRefund(
        pb.RequestRefundRequest(
            order_id=order.order_id, reason="broken", type=pb.AFTER_SALE_TYPE_RETURN_AND_REFUND
        ),
        **call_kwargs(shop, "buyer", buyer),
    )
    refund_id = requested.refund.refund_id
    await shop.stub.ApproveRefund(
        pb.ApproveRefundRequest(refund_id=refund_id), **call_kwargs(shop, "seller", seller)
    )
    await shop.stub.ShipReturn(
        pb.ShipReturnRequest(refund_id=refund_id, tracking_number="RET-2"),
        **call_kwargs(shop, "buyer", buyer),
    )
    with pytest.raises(grpc.aio.AioRpcError) as no_reason:
        await shop.stub.ReceiveReturn(
            pb.ReceiveReturnRequest(
                refund_id=refund_id, disposition=OS.RETURN_DISPOSITION_WRITE_OFF
            ),
            **call_kwargs(shop, "admin", "ops"),
        )
    assert no_reason.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "disposition_reason" in (no_reason.value.details() or "")
    await shop.stub.ReceiveReturn(
        pb.ReceiveReturnRequest(
            refund_id=refund_id,
            disposition=OS.RETURN_DISPOSITION_WRITE_OFF,
            disposition_reason="screen cracked",
        ),
        **call_kwargs(shop, "admin", "ops"),
    )
    await wait_available(shop, product_id, 2)
    await asyncio.sleep(1.0)
    assert await shop.available(product_id) == 2
    assert (
        shop.commerce.metric(
            "shopstream_commerce_returned_units_inspected_total", {"disposition": "WRITE_OFF"}
        )
        == 1
    )


@pytest.mark.parametrize(
    ("commerce_overrides", "catalog_overrides"),
    [
        (
            {**FAST_CARRIER, "delivery_promise_s": 1.5},
            {"quality": QualityThresholds(min_orders_for_tier=4, min_packages_for_rates=4)},
        )
    ],
)
async def test_a_seller_whose_parcels_are_late_drops_a_quality_tier_with_the_reason(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    since_ms = int(time.time() * 1000) - 1_000
    seller = ids("seller")
    product = await shop.listed_skus(seller, [{"w1": 20}])
    sku = product.skus[0].sku_id

    async def deliver(n: int, *, late: bool) -> None:
        buyer = ids("buyer")
        order = await shop.place_lines(buyer, [(sku, 1)], key=f"{buyer}-{n}")
        await shop.wait_state(order, OS.ORDER_STATE_RESERVED)
        await shop.stub.PayOrder(
            pb.PayOrderRequest(order_id=order.order_id, card_token="tok_visa"),
            **call_kwargs(shop, "buyer", buyer),
        )
        await shop.stub.ShipOrder(
            pb.ShipOrderRequest(order_id=order.order_id, tracking_number=f"OWN-{n}"),
            **call_kwargs(shop, "seller", seller),
        )
        if late:
            await asyncio.sleep(2.0)  # past the 1.5 s delivery promise
        await shop.stub.ConfirmDelivery(
            pb.ConfirmDeliveryRequest(order_id=order.order_id),
            **call_kwargs(shop, "buyer", buyer),
        )

    async def quality(tier: int, packages: int) -> cpb.GetSellerQualityResponse:
        for _ in range(300):
            got = await shop.catalog_stub.GetSellerQuality(
                cpb.GetSellerQualityRequest(seller_id=seller),
                **call_kwargs(shop, "seller", seller),
            )
            if (got.quality.tier, got.quality.packages) == (tier, packages):
                return got
            await asyncio.sleep(0.1)
        raise AssertionError(f"seller still {got.quality}")

    for n in range(4):
        await deliver(n, late=False)
    good = await quality(catalog_pb2.QUALITY_TIER_EXCELLENT, 4)
    assert good.quality.late_delivery_rate == 0
    await asyncio.gather(*(deliver(n, late=True) for n in range(4, 8)))
    await shop.commerce.published()
    poor = await quality(catalog_pb2.QUALITY_TIER_POOR, 8)
    assert poor.quality.late_delivery_rate == 0.5
    assert [r.code for r in poor.quality.tier_reasons] == ["LATE_DELIVERIES"]
    assert "threshold 20%" in poor.quality.tier_reasons[0].message
    # The drop is an event on catalog.sellers.v1, with its reason.
    source = f"shopstream/{shop.catalog.runtime.name}".encode()
    changes = [
        catalog_events.SellerQualityChanged.FromString(r.value() or b"")
        for r in read_since(shop.commerce.runtime.settings.kafka, "catalog.sellers.v1", since_ms)
        if r.key() == seller.encode()
        and dict(r.headers() or []).get("ce_source") == source
        and headers_dict(r.headers())["ce_type"].endswith("SellerQualityChanged")
    ]
    drop = changes[-1]
    assert (drop.previous_tier, drop.quality.tier) == (
        catalog_pb2.QUALITY_TIER_EXCELLENT,
        catalog_pb2.QUALITY_TIER_POOR,
    )
    assert [r.code for r in drop.reasons] == ["LATE_DELIVERIES"]
    assert (
        shop.commerce.metric(
            "shopstream_commerce_package_outcomes_total", {"warehouse": "w1", "outcome": "late"}
        )
        == 4
    )


@pytest.mark.parametrize(
    ("commerce_overrides", "catalog_overrides"),
    [
        (
            {},
            # 1 minor unit per unit stored per second, charged every 0.5 s.
            {"storage_fee_per_unit_day_minor": 86_400, "storage_charge_interval_s": 0.5},
        )
    ],
)
async def test_storage_fees_for_units_in_a_platform_warehouse_reach_the_sellers_ledger(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    since_ms = int(time.time() * 1000) - 1_000
    seller, warehouse, _, _ = await fbt_stock(shop, ids, 10)
    as_seller = call_kwargs(shop, "seller", seller)
    fees: list[cmpb.SellerLedgerEntry] = []
    for _ in range(200):
        balance = await shop.stub.GetSellerBalance(
            pb.GetSellerBalanceRequest(seller_id=seller), **as_seller
        )
        fees = [e for e in balance.entries if e.kind == cmpb.SELLER_ENTRY_KIND_STORAGE_FEE]
        if len(fees) >= 2:
            break
        await asyncio.sleep(0.1)
    assert len(fees) >= 2
    assert all(
        e.amount.amount_minor < 0 and e.account == cmpb.LEDGER_ACCOUNT_AVAILABLE for e in fees
    )
    # Each fee is one of catalog's charges: 10 units x the period's seconds, once.
    await shop.catalog.published()
    source = f"shopstream/{shop.catalog.runtime.name}".encode()
    charges = {
        c.charge_id: c
        for c in (
            catalog_events.StorageCharged.FromString(r.value() or b"")
            for r in read_since(
                shop.commerce.runtime.settings.kafka, "catalog.fulfilment.v1", since_ms
            )
            if dict(r.headers() or []).get("ce_source") == source
            and headers_dict(r.headers())["ce_type"].endswith("StorageCharged")
        )
    }
    assert all(c.warehouse_id == warehouse and c.units == 10 for c in charges.values())
    for c in charges.values():
        seconds = (c.period_end.ToDatetime() - c.period_start.ToDatetime()).total_seconds()
        assert c.amount.amount_minor == int(10 * seconds)
    assert -sum(e.amount.amount_minor for e in fees) <= sum(
        c.amount.amount_minor for c in charges.values()
    )
    assert balance.balance.amount_minor == sum(e.amount.amount_minor for e in balance.entries)


@pytest.mark.parametrize(
    ("commerce_overrides", "catalog_overrides"),
    [
        (
            {**FAST_CARRIER, "carrier_lost_share": 1.0},
            {"quality": QualityThresholds(min_orders_for_tier=1, min_packages_for_rates=1)},
        )
    ],
)
async def test_a_lost_parcel_keeps_its_order_in_transit_and_counts_against_the_seller(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    since_ms = int(time.time() * 1000) - 1_000
    seller, order, packages = await paid_two_warehouse_order(shop, ids)
    for package in packages:
        await shop.stub.ShipPackage(
            pb.ShipPackageRequest(package_id=package.package_id),
            **call_kwargs(shop, "seller", seller),
        )
    for package in packages:
        lost = await wait_package(shop, order, package.package_id, OS.PACKAGE_STATE_LOST)
        assert lost.HasField("lost_at") and not lost.HasField("delivered_at")
    got = await shop.wait_state(order, OS.ORDER_STATE_IN_TRANSIT)
    assert got.order.state == OS.ORDER_STATE_IN_TRANSIT  # never DELIVERED
    await shop.commerce.published()
    kinds = [k for k, _ in types_of(shop, "commerce.fulfilment.v1", since_ms, order.order_id)]
    assert kinds.count("PackageLost") == 2 and "PackageDelivered" not in kinds
    for _ in range(300):
        quality = (
            await shop.catalog_stub.GetSellerQuality(
                cpb.GetSellerQualityRequest(seller_id=seller),
                **call_kwargs(shop, "seller", seller),
            )
        ).quality
        if quality.packages == 2:
            break
        await asyncio.sleep(0.1)
    assert (quality.packages, quality.lost_parcel_rate) == (2, 1.0)
    assert quality.tier == catalog_pb2.QUALITY_TIER_POOR
    assert "LOST_PARCELS" in [r.code for r in quality.tier_reasons]
    # The buyer is refunded through after-sales (a lost parcel is refundable in transit).
    refund = await shop.stub.RequestRefund(
        pb.RequestRefundRequest(order_id=order.order_id, reason="parcel lost"),
        **call_kwargs(shop, "buyer", order.buyer_id),
    )
    approved = await shop.stub.ApproveRefund(
        pb.ApproveRefundRequest(refund_id=refund.refund.refund_id),
        **call_kwargs(shop, "seller", seller),
    )
    assert approved.order.state == OS.ORDER_STATE_REFUNDED


@pytest.mark.parametrize("commerce_overrides", [FAST_CARRIER])
async def test_a_package_refunded_before_shipping_is_cancelled_and_not_waited_for(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    since_ms = int(time.time() * 1000) - 1_000
    seller, order, packages = await paid_two_warehouse_order(shop, ids)
    first, second = sorted(packages, key=lambda p: p.warehouse_id)
    # The buyer is refunded the w2 line (both units) before anything ships.
    refund = await shop.stub.RequestRefund(
        pb.RequestRefundRequest(
            order_id=order.order_id,
            lines=[pb.RefundLineRequest(line_id=second.lines[0].line_id, quantity=2)],
            reason="changed my mind",
        ),
        **call_kwargs(shop, "buyer", order.buyer_id),
    )
    await shop.stub.ApproveRefund(
        pb.ApproveRefundRequest(refund_id=refund.refund.refund_id),
        **call_kwargs(shop, "seller", seller),
    )
    # Catalog releases the units; commerce cancels the package that would ship nothing.
    await wait_package(shop, order, second.package_id, OS.PACKAGE_STATE_CANCELLED)
    shipped = await shop.stub.ShipPackage(
        pb.ShipPackageRequest(package_id=first.package_id), **call_kwargs(shop, "seller", seller)
    )
    assert shipped.order.state == OS.ORDER_STATE_SHIPPED  # not waiting for the cancelled one
    await shop.wait_state(order, OS.ORDER_STATE_DELIVERED)
    await shop.commerce.published()
    kinds = [k for k, _ in types_of(shop, "commerce.fulfilment.v1", since_ms, order.order_id)]
    assert kinds.count("PackageCancelled") == 1
