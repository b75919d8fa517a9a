"""The order saga through gRPC with the catalog service running."""

import asyncio
from collections.abc import Callable

import grpc
import pytest
from commerce_steps import Shop, call_kwargs

from shopstream.commerce.v1 import commerce_service_pb2 as pb
from shopstream.commerce.v1 import order_pb2, payment_events_pb2
from shopstream_platform.testing import read_all_async

pytestmark = pytest.mark.integration

OS = order_pb2


async def test_place_reserve_pay_ship_deliver(shop: Shop, ids: Callable[[str], str]) -> None:
    seller, buyer = ids("seller"), ids("buyer")
    product = await shop.listed_product(seller, stock=10, price=2_000)
    sku = product.skus[0].sku_id

    placed = await shop.place(buyer, sku, quantity=2, key="checkout-1")
    assert placed.state == OS.ORDER_STATE_PLACED
    assert placed.total.amount_minor == 4_000 and placed.total.currency == "GBP"
    assert placed.lines[0].category_id == "fashion"
    # The same PlaceOrder again (same key) is the same order.
    again = await shop.place(buyer, sku, quantity=2, key="checkout-1")
    assert again.order_id == placed.order_id

    await shop.wait_state(placed, OS.ORDER_STATE_RESERVED)
    assert await shop.available(product.product_id) == 8

    paid = await shop.stub.PayOrder(
        pb.PayOrderRequest(order_id=placed.order_id, card_token="tok_visa"),
        **call_kwargs(shop, "buyer", buyer),
    )
    assert paid.order.state == OS.ORDER_STATE_PAID and paid.payment_id.startswith("pay_")
    # Another buyer cannot see it; a buyer cannot ship it.
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await shop.stub.GetOrder(
            pb.GetOrderRequest(order_id=placed.order_id), **call_kwargs(shop, "buyer", "other")
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as wrong_role:
        await shop.stub.ShipOrder(
            pb.ShipOrderRequest(order_id=placed.order_id, tracking_number="T1"),
            **call_kwargs(shop, "buyer", buyer),
        )
    assert wrong_role.value.code() == grpc.StatusCode.PERMISSION_DENIED

    shipped = await shop.stub.ShipOrder(
        pb.ShipOrderRequest(order_id=placed.order_id, tracking_number="TRK-1"),
        **call_kwargs(shop, "seller", seller),
    )
    assert shipped.order.state == OS.ORDER_STATE_SHIPPED
    delivered = await shop.stub.ConfirmDelivery(
        pb.ConfirmDeliveryRequest(order_id=placed.order_id), **call_kwargs(shop, "buyer", buyer)
    )
    assert delivered.order.state == OS.ORDER_STATE_DELIVERED
    # Shipping committed the stock in catalog: on-hand 8, nothing reserved.
    for _ in range(100):
        product_now = await shop.available(product.product_id)
        if product_now == 8:
            break
    assert product_now == 8

    # Invalid transitions are FAILED_PRECONDITION with the state named.
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await shop.stub.CancelOrder(
            pb.CancelOrderRequest(order_id=placed.order_id), **call_kwargs(shop, "buyer", buyer)
        )
    assert invalid.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "DELIVERED" in (invalid.value.details() or "")

    listed = await shop.stub.ListOrders(
        pb.ListOrdersRequest(seller_id=seller), **call_kwargs(shop, "seller", seller)
    )
    assert [o.order_id for o in listed.orders] == [placed.order_id]


async def test_out_of_stock_is_rejected_with_the_sku(shop: Shop, ids: Callable[[str], str]) -> None:
    seller, buyer = ids("seller"), ids("buyer")
    product = await shop.listed_product(seller, stock=1)
    sku = product.skus[0].sku_id
    order = await shop.place(buyer, sku, quantity=3)
    got = await shop.wait_state(order, OS.ORDER_STATE_REJECTED)
    assert got.rejected_sku_id == sku
    assert "3 wanted, 1 available" in got.rejection_reason
    assert await shop.available(product.product_id) == 1


@pytest.mark.parametrize("commerce_overrides", [{"payment_window_s": 1.0}])
async def test_unpaid_order_expires_and_its_stock_returns(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    seller, buyer = ids("seller"), ids("buyer")
    product = await shop.listed_product(seller, stock=5)
    order = await shop.place(buyer, product.skus[0].sku_id, quantity=5)
    await shop.wait_state(order, OS.ORDER_STATE_RESERVED)
    assert await shop.available(product.product_id) == 0
    await shop.wait_state(order, OS.ORDER_STATE_EXPIRED, timeout_s=30)
    for _ in range(200):
        if await shop.available(product.product_id) == 5:
            break
        import asyncio

        await asyncio.sleep(0.05)
    assert await shop.available(product.product_id) == 5
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await shop.stub.PayOrder(
            pb.PayOrderRequest(order_id=order.order_id, card_token="tok_visa"),
            **call_kwargs(shop, "buyer", buyer),
        )
    assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_declined_payment_leaves_the_order_payable(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    seller, buyer = ids("seller"), ids("buyer")
    product = await shop.listed_product(seller)
    order = await shop.place(buyer, product.skus[0].sku_id)
    await shop.wait_state(order, OS.ORDER_STATE_RESERVED)
    with pytest.raises(grpc.aio.AioRpcError) as declined:
        await shop.stub.PayOrder(
            pb.PayOrderRequest(order_id=order.order_id, card_token="tok_decline_1"),
            **call_kwargs(shop, "buyer", buyer),
        )
    assert declined.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "card declined" in (declined.value.details() or "")
    paid = await shop.stub.PayOrder(
        pb.PayOrderRequest(order_id=order.order_id, card_token="tok_visa"),
        **call_kwargs(shop, "buyer", buyer),
    )
    assert paid.order.state == OS.ORDER_STATE_PAID
    declines = shop.commerce.metric("shopstream_commerce_payments_total", {"status": "DECLINED"})
    assert declines == 1
    # Both attempts are events on commerce.payments.v1, the decline with its reason.
    records = await read_all_async(
        shop.commerce.runtime.settings.kafka,
        "commerce.payments.v1",
        expect=2,
        timeout_s=30,
        match=lambda r: r.key() == order.order_id.encode(),
        since_ms=shop.since_ms,
    )
    attempts = [payment_events_pb2.PaymentAttempted.FromString(r.value() or b"") for r in records]
    assert [(a.status, a.message) for a in attempts] == [
        (payment_events_pb2.PAYMENT_STATUS_DECLINED, "card declined"),
        (payment_events_pb2.PAYMENT_STATUS_SUCCEEDED, ""),
    ]


async def test_cancel_releases_stock_and_partial_refund(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    seller, buyer = ids("seller"), ids("buyer")
    product = await shop.listed_product(seller, stock=10, price=1_000)
    sku = product.skus[0].sku_id
    cancelled = await shop.place(buyer, sku, quantity=4, key="a")
    await shop.wait_state(cancelled, OS.ORDER_STATE_RESERVED)
    done = await shop.stub.CancelOrder(
        pb.CancelOrderRequest(order_id=cancelled.order_id, reason="changed my mind"),
        **call_kwargs(shop, "buyer", buyer),
    )
    assert done.order.state == OS.ORDER_STATE_CANCELLED

    order = await shop.place(buyer, sku, quantity=3, key="b")
    await shop.wait_state(order, OS.ORDER_STATE_RESERVED)
    await shop.stub.PayOrder(
        pb.PayOrderRequest(order_id=order.order_id, card_token="tok_visa"),
        **call_kwargs(shop, "buyer", buyer),
    )
    line = order.lines[0].line_id
    refund = await shop.stub.RequestRefund(
        pb.RequestRefundRequest(
            order_id=order.order_id,
            lines=[pb.RefundLineRequest(line_id=line, quantity=1)],
            reason="one was broken",
        ),
        **call_kwargs(shop, "buyer", buyer),
    )
    assert refund.refund.amount.amount_minor == 1_000
    with pytest.raises(grpc.aio.AioRpcError) as too_many:
        await shop.stub.RequestRefund(
            pb.RequestRefundRequest(
                order_id=order.order_id,
                lines=[pb.RefundLineRequest(line_id=line, quantity=3)],
                reason="all",
            ),
            **call_kwargs(shop, "buyer", buyer),
        )
    assert too_many.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    approved = await shop.stub.ApproveRefund(
        pb.ApproveRefundRequest(refund_id=refund.refund.refund_id),
        **call_kwargs(shop, "seller", seller),
    )
    assert approved.order.state == OS.ORDER_STATE_PARTIALLY_REFUNDED
    assert approved.order.lines[0].refunded_quantity == 1
    rest = await shop.stub.RequestRefund(
        pb.RequestRefundRequest(order_id=order.order_id, reason="return the rest"),
        **call_kwargs(shop, "buyer", buyer),
    )
    assert rest.refund.amount.amount_minor == 2_000
    final = await shop.stub.ApproveRefund(
        pb.ApproveRefundRequest(refund_id=rest.refund.refund_id),
        **call_kwargs(shop, "seller", seller),
    )
    assert final.order.state == OS.ORDER_STATE_REFUNDED
    # Stock: the cancelled 4 came back, and the 3 refunded in full before shipping too.
    for _ in range(200):
        if await shop.available(product.product_id) == 10:
            break
        await asyncio.sleep(0.05)
    assert await shop.available(product.product_id) == 10
