"""After-sales through gRPC and the topics: cancel after payment (approved: refund and stock back;
rejected: the order ships), a return and refund through every state, arbitration, commission
clawed back in proportion, and COMPLETED closing the window and settling commissions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
import pytest
from after_sales_steps import available, events, fails, paid, provider, refunds_confirmed
from commerce_steps import Shop, call_kwargs

from shopstream.commerce.v1 import commerce_service_pb2 as pb
from shopstream.commerce.v1 import commissions_pb2, order_events_pb2, order_pb2
from shopstream.commerce.v1 import payment_events_pb2 as pev

pytestmark = pytest.mark.integration

OS, RS, T = order_pb2, pb, pb
K = commissions_pb2


async def test_cancel_after_payment_approved_refunds_and_releases_rejected_ships(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    since_ms = int(time.time() * 1000) - 1_000
    seller, buyer = ids("seller"), ids("buyer")
    as_buyer, as_seller = call_kwargs(shop, "buyer", buyer), call_kwargs(shop, "seller", seller)
    product = await shop.listed_product(seller, stock=10, price=1_500)
    sku = product.skus[0].sku_id

    approved = await paid(shop, buyer, sku, 2, "approved")
    asked = await shop.stub.RequestRefund(
        pb.RequestRefundRequest(
            order_id=approved.order_id, reason="ordered twice", type=T.AFTER_SALE_TYPE_CANCEL
        ),
        **as_buyer,
    )
    assert asked.refund.state == RS.REFUND_STATE_REQUESTED
    assert asked.refund.type == T.AFTER_SALE_TYPE_CANCEL
    assert asked.refund.amount.amount_minor == 3_000
    # Nothing ships while the buyer's cancellation waits for an answer.
    details = await fails(
        shop.stub.ShipOrder(
            pb.ShipOrderRequest(order_id=approved.order_id, tracking_number="T-0"), **as_seller
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert "cancellation" in details
    done = await shop.stub.ApproveRefund(
        pb.ApproveRefundRequest(refund_id=asked.refund.refund_id), **as_seller
    )
    assert done.refund.state == RS.REFUND_STATE_APPROVED
    assert done.order.state == OS.ORDER_STATE_CANCELLED
    assert done.order.lines[0].refunded_quantity == 2
    assert await available(shop, product.product_id, 10) == 10  # stock back
    (refunded,) = await refunds_confirmed(shop, approved.order_id, since_ms, 1)
    assert refunded.amount.amount_minor == 3_000
    assert refunded.cause == pev.REFUND_CAUSE_BUYER_REFUND
    assert provider(shop).balances()[approved.order_id] == (3_000, 3_000)
    await shop.commerce.published()
    order_events = events(shop, "commerce.orders.v1", order_events_pb2, approved.order_id, since_ms)
    last = order_events[-1]
    assert isinstance(last, order_events_pb2.OrderRefunded)
    assert last.order.state == OS.ORDER_STATE_CANCELLED and last.amount.amount_minor == 3_000

    rejected = await paid(shop, buyer, sku, 1, "rejected")
    asked = await shop.stub.RequestRefund(
        pb.RequestRefundRequest(
            order_id=rejected.order_id, reason="too slow", type=T.AFTER_SALE_TYPE_CANCEL
        ),
        **as_buyer,
    )
    no = await shop.stub.RejectRefund(
        pb.RejectRefundRequest(
            refund_id=asked.refund.refund_id,
            reason=pb.REJECT_REASON_ALREADY_PACKED,
            note="handed to the carrier this morning",
        ),
        **as_seller,
    )
    assert no.refund.state == RS.REFUND_STATE_REJECTED
    assert no.refund.reject_reason == pb.REJECT_REASON_ALREADY_PACKED
    assert no.order.state == OS.ORDER_STATE_PAID
    # A rejected cancellation is not arbitrated: the order ships.
    await fails(
        shop.stub.EscalateRefund(
            pb.EscalateRefundRequest(refund_id=asked.refund.refund_id), **as_buyer
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    shipped = await shop.stub.ShipOrder(
        pb.ShipOrderRequest(order_id=rejected.order_id, tracking_number="T-1"), **as_seller
    )
    assert shipped.order.state == OS.ORDER_STATE_SHIPPED
    assert await available(shop, product.product_id, 9) == 9  # the one unit left the warehouse
    # Shipped: too late to cancel.
    await fails(
        shop.stub.RequestRefund(
            pb.RequestRefundRequest(
                order_id=rejected.order_id, reason="x", type=T.AFTER_SALE_TYPE_CANCEL
            ),
            **as_buyer,
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    assert provider(shop).balances()[rejected.order_id] == (1_500, 0)


@pytest.mark.parametrize("commerce_overrides", [{"return_window_s": 8.0}])
async def test_returns_and_refunds_through_every_state_then_the_order_completes(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    since_ms = int(time.time() * 1000) - 1_000
    seller, buyer, creator = ids("seller"), ids("buyer"), ids("creator")
    as_buyer, as_seller = call_kwargs(shop, "buyer", buyer), call_kwargs(shop, "seller", seller)
    as_admin = call_kwargs(shop, "admin", "arbiter")
    product = await shop.listed_product(seller, stock=10, price=1_500)
    for _ in range(100):  # commerce hears of a new product a moment after catalog made it
        try:
            await shop.stub.SetCommissionRate(
                pb.SetCommissionRateRequest(
                    seller_id=seller, product_id=product.product_id, rate_bps=1_000
                ),
                **as_seller,
            )
            break
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            await asyncio.sleep(0.1)
    order = await paid(shop, buyer, product.skus[0].sku_id, 3, "three", creator_id=creator)
    line = order.lines[0].line_id
    await fails(  # nothing shipped yet: nothing to return
        shop.stub.RequestRefund(
            pb.RequestRefundRequest(
                order_id=order.order_id, reason="x", type=T.AFTER_SALE_TYPE_RETURN_AND_REFUND
            ),
            **as_buyer,
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    await shop.stub.ShipOrder(
        pb.ShipOrderRequest(order_id=order.order_id, tracking_number="T-1"), **as_seller
    )
    await shop.stub.ConfirmDelivery(pb.ConfirmDeliveryRequest(order_id=order.order_id), **as_buyer)

    def one_unit(kind: int, reason: str) -> pb.RequestRefundRequest:
        return pb.RequestRefundRequest(
            order_id=order.order_id,
            lines=[pb.RefundLineRequest(line_id=line, quantity=1)],
            reason=reason,
            type=kind,  # type: ignore[arg-type]
        )

    received = (
        await shop.stub.RequestRefund(
            one_unit(T.AFTER_SALE_TYPE_RETURN_AND_REFUND, "wrong colour"), **as_buyer
        )
    ).refund
    disputed = (
        await shop.stub.RequestRefund(
            one_unit(T.AFTER_SALE_TYPE_RETURN_AND_REFUND, "broken"), **as_buyer
        )
    ).refund
    refused = (
        await shop.stub.RequestRefund(one_unit(T.AFTER_SALE_TYPE_REFUND, "late"), **as_buyer)
    ).refund
    # All three units are claimed: a fourth request has nothing left.
    await fails(
        shop.stub.RequestRefund(one_unit(T.AFTER_SALE_TYPE_REFUND, "more"), **as_buyer),
        grpc.StatusCode.INVALID_ARGUMENT,
    )

    # 1. Return: approved, shipped back, received → refunded.
    await fails(
        shop.stub.ShipReturn(
            pb.ShipReturnRequest(refund_id=received.refund_id, tracking_number="R-1"), **as_buyer
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    step = await shop.stub.ApproveRefund(
        pb.ApproveRefundRequest(refund_id=received.refund_id), **as_seller
    )
    assert step.refund.state == RS.REFUND_STATE_AWAITING_BUYER_SHIPMENT
    assert step.order.lines[0].refunded_quantity == 0  # no money before the items come back
    back = await shop.stub.ShipReturn(
        pb.ShipReturnRequest(refund_id=received.refund_id, tracking_number="R-1"), **as_buyer
    )
    assert back.refund.state == RS.REFUND_STATE_BUYER_SHIPPED
    assert back.refund.return_tracking_number == "R-1"
    got = await shop.stub.ReceiveReturn(
        pb.ReceiveReturnRequest(refund_id=received.refund_id), **as_seller
    )
    assert got.refund.state == RS.REFUND_STATE_APPROVED
    assert got.order.state == OS.ORDER_STATE_PARTIALLY_REFUNDED

    # 2. Return: the package is refused, the buyer escalates, the platform refunds.
    await shop.stub.ApproveRefund(
        pb.ApproveRefundRequest(refund_id=disputed.refund_id), **as_seller
    )
    await shop.stub.ShipReturn(
        pb.ShipReturnRequest(refund_id=disputed.refund_id, tracking_number="R-2"), **as_buyer
    )
    no = await shop.stub.RejectRefund(
        pb.RejectRefundRequest(
            refund_id=disputed.refund_id,
            reason=pb.REJECT_REASON_RETURNED_ITEM_DAMAGED,
            note="scratched",
        ),
        **as_seller,
    )
    assert no.refund.state == RS.REFUND_STATE_REJECTED
    up = await shop.stub.EscalateRefund(
        pb.EscalateRefundRequest(refund_id=disputed.refund_id, note="it arrived scratched"),
        **as_buyer,
    )
    assert up.refund.state == RS.REFUND_STATE_ESCALATED
    assert up.refund.escalation_note == "it arrived scratched"
    await fails(  # escalated: the platform decides, not the seller
        shop.stub.ApproveRefund(pb.ApproveRefundRequest(refund_id=disputed.refund_id), **as_seller),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    ruled = await shop.stub.ApproveRefund(
        pb.ApproveRefundRequest(refund_id=disputed.refund_id), **as_admin
    )
    assert ruled.refund.state == RS.REFUND_STATE_APPROVED

    # 3. Refund only: rejected, escalated, the platform upholds the rejection.
    await shop.stub.RejectRefund(
        pb.RejectRefundRequest(
            refund_id=refused.refund_id, reason=pb.REJECT_REASON_CLAIM_NOT_SUPPORTED
        ),
        **as_seller,
    )
    await shop.stub.EscalateRefund(
        pb.EscalateRefundRequest(refund_id=refused.refund_id), **as_buyer
    )
    closed = await shop.stub.RejectRefund(
        pb.RejectRefundRequest(
            refund_id=refused.refund_id, reason=pb.REJECT_REASON_CLAIM_NOT_SUPPORTED, note="upheld"
        ),
        **as_admin,
    )
    assert closed.refund.state == RS.REFUND_STATE_CLOSED
    assert closed.order.lines[0].refunded_quantity == 2

    # Money: two units refunded at the provider, matching commerce's events.
    confirmed = await refunds_confirmed(shop, order.order_id, since_ms, 2)
    assert sorted(e.refund_id for e in confirmed) == sorted(
        [received.refund_id, disputed.refund_id]
    )
    assert provider(shop).balances()[order.order_id] == (4_500, 3_000)

    # The window closes with nothing open: COMPLETED, and the creator's commission (10% of
    # 4,500, less 10% of each refunded unit) settles.
    final = await shop.wait_state(order, OS.ORDER_STATE_COMPLETED, timeout_s=30)
    assert final.order.lines[0].refunded_quantity == 2
    for _ in range(50):
        earnings = await shop.stub.GetCreatorEarnings(
            pb.GetCreatorEarningsRequest(creator_id=creator),
            **call_kwargs(shop, "creator", creator),
        )
        if earnings.available.amount_minor == 150:
            break
        await asyncio.sleep(0.1)
    kinds = sorted(
        (e.kind, e.amount.amount_minor)
        for e in earnings.entries
        if e.kind in (K.LEDGER_ENTRY_KIND_ACCRUAL, K.LEDGER_ENTRY_KIND_REVERSAL)
    )
    assert kinds == [
        (K.LEDGER_ENTRY_KIND_ACCRUAL, 450),
        (K.LEDGER_ENTRY_KIND_REVERSAL, -150),
        (K.LEDGER_ENTRY_KIND_REVERSAL, -150),
    ]
    assert (earnings.pending.amount_minor, earnings.available.amount_minor) == (0, 150)
    assert earnings.balance.amount_minor == sum(e.amount.amount_minor for e in earnings.entries)
    await shop.commerce.published()
    completed = [
        e
        for e in events(shop, "commerce.orders.v1", order_events_pb2, order.order_id, since_ms)
        if isinstance(e, order_events_pb2.OrderCompleted)
    ]
    assert len(completed) == 1 and completed[0].order.state == OS.ORDER_STATE_COMPLETED
    # Completed: after-sales is closed.
    await fails(
        shop.stub.RequestRefund(
            pb.RequestRefundRequest(order_id=order.order_id, reason="one more"), **as_buyer
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
