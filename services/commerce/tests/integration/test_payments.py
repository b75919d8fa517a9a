"""Payments that cannot be lost, through gRPC and commerce.payments.v1 on the real broker.

Each test checks the invariant from outside: what the sandbox provider holds per order (charged,
refunded) equals what commerce published on commerce.payments.v1 (SUCCEEDED attempts, refunds).
"""

import asyncio
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from commerce_steps import Shop, call_kwargs

from shopstream.commerce.v1 import commerce_service_pb2 as pb
from shopstream.commerce.v1 import order_pb2
from shopstream.commerce.v1 import payment_events_pb2 as pev
from shopstream_commerce.payments.provider import SandboxProvider
from shopstream_platform.kafka.cloudevents import headers_dict
from shopstream_platform.testing import read_all_async

pytestmark = pytest.mark.integration

OS = order_pb2
# The sweeper may ask the provider about an open intent 1 s after its last news.
QUICK_TIMEOUTS = {"payment_timeout_s": 0.5, "payment_resolve_after_s": 1.0}


def provider(shop: Shop) -> SandboxProvider:
    found = shop.commerce.wired.orders.payments.provider
    assert isinstance(found, SandboxProvider)
    return found


async def payment_events(shop: Shop, order_id: str, expect: int) -> list[Any]:
    """The order's records on commerce.payments.v1, decoded by their ce_type."""
    records = await read_all_async(
        shop.commerce.runtime.settings.kafka,
        "commerce.payments.v1",
        expect=expect,
        timeout_s=30,
        match=lambda r: r.key() == order_id.encode(),
        since_ms=shop.since_ms,
    )
    decoded: list[Any] = []
    for record in records:
        kind = headers_dict(record.headers())["ce_type"].rsplit(".", 1)[-1]
        decoded.append(getattr(pev, kind).FromString(record.value() or b""))
    assert len(decoded) == expect, [type(e).__name__ for e in decoded]
    return decoded


def assert_matched(shop: Shop, order_id: str, events: list[Any]) -> tuple[int, int]:
    """Provider's (charged, refunded) for the order equals the recount of commerce's events."""
    paid = sum(
        e.amount.amount_minor
        for e in events
        if isinstance(e, pev.PaymentAttempted) and e.status == pev.PAYMENT_STATUS_SUCCEEDED
    )
    refunded = sum(e.amount.amount_minor for e in events if isinstance(e, pev.PaymentRefunded))
    at_provider = provider(shop).balances().get(order_id, (0, 0))
    assert at_provider == (paid, refunded)
    return at_provider


def cancelled_keys(shop: Shop) -> set[str]:
    """The idempotency keys whose intent the provider cancelled (its own records)."""
    return {e.key for e in provider(shop).entries if e.kind == "cancel"}


async def reserved_order(
    shop: Shop, seller: str, buyer: str, *, stock: int = 10, quantity: int = 1, **attribution: str
) -> tuple[order_pb2.Order, str]:
    product = await shop.listed_product(seller, stock=stock, price=1_500)
    order = await shop.place(buyer, product.skus[0].sku_id, quantity=quantity, **attribution)
    await shop.wait_state(order, OS.ORDER_STATE_RESERVED)
    return order, product.product_id


async def pay(shop: Shop, order: order_pb2.Order, token: str) -> pb.PayOrderResponse:
    return await shop.stub.PayOrder(
        pb.PayOrderRequest(order_id=order.order_id, card_token=token),
        **call_kwargs(shop, "buyer", order.buyer_id),
    )


async def pay_fails(shop: Shop, order: order_pb2.Order, token: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await pay(shop, order, token)
    return failed.value


async def wait_available(shop: Shop, product_id: str, units: int) -> None:
    for _ in range(300):
        if await shop.available(product_id) == units:
            return
        await asyncio.sleep(0.1)
    assert await shop.available(product_id) == units


@pytest.mark.parametrize("commerce_overrides", [{"payment_window_s": 1.0, "sandbox_slow_s": 2.5}])
async def test_a_charge_for_an_order_that_expired_meanwhile_is_recorded_and_refunded(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    order, product_id = await reserved_order(shop, ids("seller"), ids("buyer"), quantity=2)
    # tok_slow charges at once and answers 2.5 s later: the 1 s payment window closes meanwhile.
    late = await pay_fails(shop, order, "tok_slow_visa")
    assert late.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "refunded" in (late.details() or "")
    got = await shop.wait_state(order, OS.ORDER_STATE_EXPIRED)
    assert got.order.state == OS.ORDER_STATE_EXPIRED
    attempted, refunded = await payment_events(shop, order.order_id, expect=2)
    assert isinstance(attempted, pev.PaymentAttempted)
    assert attempted.status == pev.PAYMENT_STATUS_SUCCEEDED
    assert "EXPIRED" in attempted.message and attempted.intent_id
    assert isinstance(refunded, pev.PaymentRefunded)
    assert refunded.cause == pev.REFUND_CAUSE_ORDER_NOT_PAYABLE
    assert refunded.payment_id == attempted.payment_id and refunded.provider_refund_id
    assert refunded.amount.amount_minor == 3_000 == order.total.amount_minor
    assert assert_matched(shop, order.order_id, [attempted, refunded]) == (3_000, 3_000)
    # The expired order's stock came back.
    await wait_available(shop, product_id, 10)


@pytest.mark.parametrize("commerce_overrides", [QUICK_TIMEOUTS])
async def test_time_outs_that_charged_are_resolved_by_the_sweeper(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    seller = ids("seller")
    kept, _ = await reserved_order(shop, seller, ids("buyer"))
    gone, gone_product = await reserved_order(shop, seller, ids("buyer"), quantity=3)
    # The provider charges and then never answers.
    timed_out = await pay_fails(shop, kept, "tok_charge_timeout_visa")
    assert timed_out.code() == grpc.StatusCode.UNAVAILABLE
    # While the intent is open nobody starts a second charge.
    busy = await pay_fails(shop, kept, "tok_visa")
    assert busy.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "in progress" in (busy.details() or "")
    timed_out = await pay_fails(shop, gone, "tok_charge_timeout_visa")
    assert timed_out.code() == grpc.StatusCode.UNAVAILABLE
    # The buyer gives up on the second order before the sweeper asks the provider.
    await shop.stub.CancelOrder(
        pb.CancelOrderRequest(order_id=gone.order_id, reason="took too long"),
        **call_kwargs(shop, "buyer", gone.buyer_id),
    )

    # The sweeper finds the charge under the intent's key: the first order is paid ...
    paid = await shop.wait_state(kept, OS.ORDER_STATE_PAID)
    assert paid.order.state == OS.ORDER_STATE_PAID
    timed, succeeded = await payment_events(shop, kept.order_id, expect=2)
    assert (timed.status, succeeded.status) == (
        pev.PAYMENT_STATUS_TIMED_OUT,
        pev.PAYMENT_STATUS_SUCCEEDED,
    )
    assert timed.intent_id == succeeded.intent_id and timed.payment_id == ""
    assert assert_matched(shop, kept.order_id, [timed, succeeded]) == (1_500, 0)
    again = await pay_fails(shop, kept, "tok_visa")
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION

    # ... and the cancelled one's charge is recorded and refunded.
    events = await payment_events(shop, gone.order_id, expect=3)
    assert [type(e).__name__ for e in events] == [
        "PaymentAttempted",
        "PaymentAttempted",
        "PaymentRefunded",
    ]
    assert events[1].status == pev.PAYMENT_STATUS_SUCCEEDED and "CANCELLED" in events[1].message
    assert events[2].cause == pev.REFUND_CAUSE_ORDER_NOT_PAYABLE
    assert assert_matched(shop, gone.order_id, events) == (4_500, 4_500)
    await wait_available(shop, gone_product, 10)


@pytest.mark.parametrize("commerce_overrides", [QUICK_TIMEOUTS])
async def test_a_time_out_that_did_not_charge_lets_the_order_be_paid_again_never_twice(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    seller = ids("seller")
    order, _ = await reserved_order(shop, seller, ids("buyer"))
    timed_out = await pay_fails(shop, order, "tok_timeout_visa")
    assert timed_out.code() == grpc.StatusCode.UNAVAILABLE
    # The buyer retries with another card: refused while the first attempt is unresolved, then
    # accepted once the sweeper learned from the provider that nothing was charged.
    refused = 0
    for _ in range(100):
        try:
            paid = await pay(shop, order, "tok_visa")
            break
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION, exc.details()
            assert "in progress" in (exc.details() or "")
            refused += 1
            await asyncio.sleep(0.1)
    assert refused >= 1 and paid.order.state == OS.ORDER_STATE_PAID
    twice = await pay_fails(shop, order, "tok_visa")
    assert twice.code() == grpc.StatusCode.FAILED_PRECONDITION
    events = await payment_events(shop, order.order_id, expect=3)
    assert [e.status for e in events] == [
        pev.PAYMENT_STATUS_TIMED_OUT,
        pev.PAYMENT_STATUS_NOT_CHARGED,
        pev.PAYMENT_STATUS_SUCCEEDED,
    ]
    # NOT_CHARGED only after the provider cancelled the first intent (nothing can charge it now).
    assert "cancelled" in events[1].message
    assert cancelled_keys(shop) >= {events[1].idempotency_key}
    assert events[2].idempotency_key not in cancelled_keys(shop)
    assert assert_matched(shop, order.order_id, events) == (1_500, 0)

    # Two PayOrder calls at once for one order: one charge, one refusal.
    racing, _ = await reserved_order(shop, seller, ids("buyer"))
    outcomes = await asyncio.gather(
        pay(shop, racing, "tok_visa"), pay(shop, racing, "tok_mastercard"), return_exceptions=True
    )
    assert sorted(type(o).__name__ for o in outcomes) == ["AioRpcError", "PayOrderResponse"]
    assert provider(shop).balances()[racing.order_id] == (1_500, 0)


@pytest.mark.parametrize("commerce_overrides", [{**QUICK_TIMEOUTS, "sandbox_stuck_s": 4.0}])
async def test_a_stuck_charge_is_cancelled_before_not_charged_and_refused_when_it_arrives(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    order, _ = await reserved_order(shop, ids("seller"), ids("buyer"))
    # The request is stuck in the provider's network: no answer, no charge yet; it reaches the
    # provider 4 s later, well after the sweeper (1 s) asked and found nothing.
    stuck = await pay_fails(shop, order, "tok_stuck_visa")
    assert stuck.code() == grpc.StatusCode.UNAVAILABLE
    timed_out, not_charged = await payment_events(shop, order.order_id, expect=2)
    assert not_charged.status == pev.PAYMENT_STATUS_NOT_CHARGED
    first_key = not_charged.idempotency_key
    # Declared NOT_CHARGED only once the provider cancelled the intent under its key.
    assert first_key == timed_out.idempotency_key and first_key in cancelled_keys(shop)
    paid = await pay(shop, order, "tok_visa")
    assert paid.order.state == OS.ORDER_STATE_PAID
    # The stuck request arrives and is refused: the order is charged once, by the second card.
    for _ in range(100):
        if any(e.kind == "refused" and e.key == first_key for e in provider(shop).entries):
            break
        await asyncio.sleep(0.1)
    kinds = [e.kind for e in provider(shop).entries if e.key == first_key]
    assert kinds == ["cancel", "refused"]
    events = await payment_events(shop, order.order_id, expect=3)
    assert events[2].status == pev.PAYMENT_STATUS_SUCCEEDED
    assert assert_matched(shop, order.order_id, events) == (1_500, 0)


@pytest.mark.parametrize("commerce_overrides", [{**QUICK_TIMEOUTS, "sandbox_stuck_s": 600.0}])
async def test_a_charge_landing_between_retrieve_and_cancel_ends_paid_or_refunded(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    seller = ids("seller")
    kept, _ = await reserved_order(shop, seller, ids("buyer"))
    gone, gone_product = await reserved_order(shop, seller, ids("buyer"), quantity=2)
    # tok_stuck_race: the provider answers the sweeper's retrieve "no such charge" and the stuck
    # request charges right after, before the cancel arrives.
    for order in (kept, gone):
        stuck = await pay_fails(shop, order, "tok_stuck_race_visa")
        assert stuck.code() == grpc.StatusCode.UNAVAILABLE
    await shop.stub.CancelOrder(
        pb.CancelOrderRequest(order_id=gone.order_id, reason="took too long"),
        **call_kwargs(shop, "buyer", gone.buyer_id),
    )

    # The cancel finds the charge: the reserved order is paid with it ...
    paid = await shop.wait_state(kept, OS.ORDER_STATE_PAID)
    assert paid.order.state == OS.ORDER_STATE_PAID
    timed, succeeded = await payment_events(shop, kept.order_id, expect=2)
    assert (timed.status, succeeded.status) == (
        pev.PAYMENT_STATUS_TIMED_OUT,
        pev.PAYMENT_STATUS_SUCCEEDED,
    )
    assert succeeded.intent_id == timed.intent_id and succeeded.payment_id
    assert assert_matched(shop, kept.order_id, [timed, succeeded]) == (1_500, 0)
    again = await pay_fails(shop, kept, "tok_visa")
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION

    # ... and the cancelled order's charge is recorded and refunded in full.
    events = await payment_events(shop, gone.order_id, expect=3)
    assert [type(e).__name__ for e in events] == [
        "PaymentAttempted",
        "PaymentAttempted",
        "PaymentRefunded",
    ]
    assert events[1].status == pev.PAYMENT_STATUS_SUCCEEDED and "CANCELLED" in events[1].message
    assert events[2].cause == pev.REFUND_CAUSE_ORDER_NOT_PAYABLE
    assert assert_matched(shop, gone.order_id, events) == (3_000, 3_000)
    # Neither intent was cancelled at the provider: each was charged first, and no order was
    # ever declared NOT_CHARGED.
    assert not cancelled_keys(shop) & {timed.idempotency_key, events[0].idempotency_key}
    found = shop.commerce.metric("shopstream_commerce_charges_found_by_cancel_total", {})
    assert found == 2
    await wait_available(shop, gone_product, 10)


async def test_a_full_refund_before_shipping_releases_the_stock_and_refunds_at_the_provider(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    seller, buyer = ids("seller"), ids("buyer")
    order, product_id = await reserved_order(
        shop, seller, buyer, quantity=3, creator_id="creator-1", ad_click_id="clk-secret"
    )
    assert await shop.available(product_id) == 7
    await pay(shop, order, "tok_visa")

    # Privacy: the buyer sees the line's ad click id, the seller does not.
    as_buyer = await shop.stub.GetOrder(
        pb.GetOrderRequest(order_id=order.order_id), **call_kwargs(shop, "buyer", buyer)
    )
    assert as_buyer.order.lines[0].attribution.ad_click_id == "clk-secret"
    as_seller = await shop.stub.GetOrder(
        pb.GetOrderRequest(order_id=order.order_id), **call_kwargs(shop, "seller", seller)
    )
    listed = await shop.stub.ListOrders(
        pb.ListOrdersRequest(seller_id=seller), **call_kwargs(shop, "seller", seller)
    )
    for seen in (as_seller.order, listed.orders[0]):
        assert seen.lines[0].attribution.ad_click_id == ""
        assert seen.lines[0].attribution.creator_id == "creator-1"

    # A partial refund first, then the rest: each is given back at the provider.
    line = order.lines[0].line_id
    first = await shop.stub.RequestRefund(
        pb.RequestRefundRequest(
            order_id=order.order_id,
            lines=[pb.RefundLineRequest(line_id=line, quantity=1)],
            reason="one was broken",
        ),
        **call_kwargs(shop, "buyer", buyer),
    )
    partly = await shop.stub.ApproveRefund(
        pb.ApproveRefundRequest(refund_id=first.refund.refund_id),
        **call_kwargs(shop, "seller", seller),
    )
    assert partly.order.state == OS.ORDER_STATE_PARTIALLY_REFUNDED
    assert partly.order.lines[0].attribution.ad_click_id == ""
    # Partly refunded, the order may still ship its other 2 units: only the refunded one is
    # released.
    await wait_available(shop, product_id, 8)
    rest = await shop.stub.RequestRefund(
        pb.RequestRefundRequest(order_id=order.order_id, reason="not needed any more"),
        **call_kwargs(shop, "buyer", buyer),
    )
    final = await shop.stub.ApproveRefund(
        pb.ApproveRefundRequest(refund_id=rest.refund.refund_id),
        **call_kwargs(shop, "seller", seller),
    )
    assert final.order.state == OS.ORDER_STATE_REFUNDED
    # Refunded in full before it shipped: catalog releases the 3 reserved units.
    await wait_available(shop, product_id, 10)

    events = await payment_events(shop, order.order_id, expect=3)
    charged, partial, full = events
    assert charged.status == pev.PAYMENT_STATUS_SUCCEEDED
    assert [(e.cause, e.refund_id, e.amount.amount_minor) for e in (partial, full)] == [
        (pev.REFUND_CAUSE_BUYER_REFUND, first.refund.refund_id, 1_500),
        (pev.REFUND_CAUSE_BUYER_REFUND, rest.refund.refund_id, 3_000),
    ]
    assert assert_matched(shop, order.order_id, events) == (4_500, 4_500)


async def test_free_text_fields_are_bounded(shop: Shop, ids: Callable[[str], str]) -> None:
    seller, buyer = ids("seller"), ids("buyer")
    order, _ = await reserved_order(shop, seller, buyer)
    with pytest.raises(grpc.aio.AioRpcError) as long_reason:
        await shop.stub.CancelOrder(
            pb.CancelOrderRequest(order_id=order.order_id, reason="x" * 1_100_000),
            **call_kwargs(shop, "buyer", buyer),
        )
    assert long_reason.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (long_reason.value.details() or "").startswith("reason: at most 500 characters")
    with pytest.raises(grpc.aio.AioRpcError) as long_click:
        await shop.stub.PlaceOrder(
            pb.PlaceOrderRequest(
                buyer_id=buyer,
                idempotency_key="k",
                lines=[
                    pb.OrderLineRequest(
                        sku_id=order.lines[0].sku_id,
                        quantity=1,
                        attribution=order_pb2.AttributionContext(ad_click_id="c" * 129),
                    )
                ],
            ),
            **call_kwargs(shop, "buyer", buyer),
        )
    assert long_click.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "lines[0].attribution.ad_click_id" in (long_click.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as long_id:
        await shop.stub.GetOrder(
            pb.GetOrderRequest(order_id="o" * 100_000), **call_kwargs(shop, "buyer", buyer)
        )
    assert long_id.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # Within bounds the order is untouched and still cancellable.
    done = await shop.stub.CancelOrder(
        pb.CancelOrderRequest(order_id=order.order_id, reason="r" * 500),
        **call_kwargs(shop, "buyer", buyer),
    )
    assert done.order.state == OS.ORDER_STATE_CANCELLED
