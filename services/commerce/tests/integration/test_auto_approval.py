"""The seller's deadline, through gRPC and the topics: requests the seller leaves unanswered past
`seller_response_window_s` are approved by the platform (a cancellation: refunded and the stock
back; a return: the buyer ships it back), and a request answered in time is left as answered."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from after_sales_steps import available, events, fails, paid, provider, refunds_confirmed
from commerce_steps import Shop, call_kwargs

from shopstream.commerce.v1 import commerce_service_pb2 as pb
from shopstream.commerce.v1 import order_events_pb2, order_pb2

pytestmark = pytest.mark.integration

OS, RS, T = order_pb2, pb, pb
WINDOW_S = 3.0


@pytest.mark.parametrize("commerce_overrides", [{"seller_response_window_s": WINDOW_S}])
async def test_requests_the_seller_leaves_unanswered_are_approved_by_the_platform(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    since_ms = int(time.time() * 1000) - 1_000
    seller, buyer = ids("seller"), ids("buyer")
    as_buyer, as_seller = call_kwargs(shop, "buyer", buyer), call_kwargs(shop, "seller", seller)
    product = await shop.listed_product(seller, stock=10, price=1_500)
    sku = product.skus[0].sku_id
    delivered = await paid(shop, buyer, sku, 2, "delivered")
    await shop.stub.ShipOrder(
        pb.ShipOrderRequest(order_id=delivered.order_id, tracking_number="T-1"), **as_seller
    )
    await shop.stub.ConfirmDelivery(
        pb.ConfirmDeliveryRequest(order_id=delivered.order_id), **as_buyer
    )
    line = delivered.lines[0].line_id

    def one_unit(kind: int, reason: str) -> pb.RequestRefundRequest:
        return pb.RequestRefundRequest(
            order_id=delivered.order_id,
            lines=[pb.RefundLineRequest(line_id=line, quantity=1)],
            reason=reason,
            type=kind,  # type: ignore[arg-type]
        )

    cancelled = await paid(shop, buyer, sku, 2, "cancelled")
    asked_at = datetime.now(UTC)
    cancel = (
        await shop.stub.RequestRefund(
            pb.RequestRefundRequest(
                order_id=cancelled.order_id, reason="ordered twice", type=T.AFTER_SALE_TYPE_CANCEL
            ),
            **as_buyer,
        )
    ).refund
    ret = (
        await shop.stub.RequestRefund(
            one_unit(T.AFTER_SALE_TYPE_RETURN_AND_REFUND, "wrong size"), **as_buyer
        )
    ).refund
    answered = (
        await shop.stub.RequestRefund(one_unit(T.AFTER_SALE_TYPE_REFUND, "late"), **as_buyer)
    ).refund
    # Each request tells when the seller's answer is due.
    respond_by = cancel.respond_by.ToDatetime(UTC)
    assert timedelta(0) < respond_by - asked_at <= timedelta(seconds=WINDOW_S + 1)
    assert not cancel.auto_approved and ret.respond_by.seconds > 0
    # The seller answers one in time: it is not the platform's to approve any more.
    no = await shop.stub.RejectRefund(
        pb.RejectRefundRequest(
            refund_id=answered.refund_id, reason=pb.REJECT_REASON_CLAIM_NOT_SUPPORTED
        ),
        **as_seller,
    )
    assert no.refund.state == RS.REFUND_STATE_REJECTED and not no.refund.HasField("respond_by")
    # Before the deadline nothing moves.
    early = await shop.stub.GetOrder(pb.GetOrderRequest(order_id=cancelled.order_id), **as_buyer)
    assert datetime.now(UTC) < respond_by and early.order.state == OS.ORDER_STATE_PAID

    # The cancellation the seller let pass: approved by the platform, refunded, stock back.
    got = await shop.wait_state(cancelled, OS.ORDER_STATE_CANCELLED, timeout_s=30)
    assert datetime.now(UTC) >= respond_by
    assert got.order.lines[0].refunded_quantity == 2
    (refund,) = await refunds_confirmed(shop, cancelled.order_id, since_ms, 1)
    assert refund.refund_id == cancel.refund_id and refund.amount.amount_minor == 3_000
    assert provider(shop).balances()[cancelled.order_id] == (3_000, 3_000)
    assert await available(shop, product.product_id, 8) == 8  # only the delivered 2 are gone
    await shop.commerce.published()
    (given_back,) = [
        e
        for e in events(shop, "commerce.orders.v1", order_events_pb2, cancelled.order_id, since_ms)
        if isinstance(e, order_events_pb2.OrderRefunded)
    ]
    assert given_back.auto_approved and given_back.order.state == OS.ORDER_STATE_CANCELLED

    # The return the seller let pass: approved (no money before the item comes back), so the
    # buyer ships it; the seller can no longer approve or reject the request itself.
    for _ in range(100):
        try:
            back = await shop.stub.ShipReturn(
                pb.ShipReturnRequest(refund_id=ret.refund_id, tracking_number="R-1"), **as_buyer
            )
            break
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION, exc.details()
            await asyncio.sleep(0.1)
    assert back.refund.state == RS.REFUND_STATE_BUYER_SHIPPED and back.refund.auto_approved
    await fails(
        shop.stub.ApproveRefund(pb.ApproveRefundRequest(refund_id=ret.refund_id), **as_seller),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    received = await shop.stub.ReceiveReturn(
        pb.ReceiveReturnRequest(refund_id=ret.refund_id), **as_seller
    )
    assert received.refund.state == RS.REFUND_STATE_APPROVED
    assert received.order.state == OS.ORDER_STATE_PARTIALLY_REFUNDED

    # The answered refund stayed REJECTED past its deadline: the buyer may still escalate it.
    up = await shop.stub.EscalateRefund(
        pb.EscalateRefundRequest(refund_id=answered.refund_id), **as_buyer
    )
    assert up.refund.state == RS.REFUND_STATE_ESCALATED and not up.refund.auto_approved
    (returned,) = await refunds_confirmed(shop, delivered.order_id, since_ms, 1)
    assert returned.refund_id == ret.refund_id
    assert provider(shop).balances()[delivered.order_id] == (3_000, 1_500)
    metric = "shopstream_commerce_after_sales_auto_approved_total"
    assert [
        shop.commerce.metric(metric, {"type": kind})
        for kind in ("CANCEL", "RETURN_AND_REFUND", "REFUND")
    ] == [1, 1, 0]
