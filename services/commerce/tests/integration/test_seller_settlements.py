"""Seller settlements through gRPC and the topics: per order paid, platform fee, creator
commission, refunds and net payout; the seller's ledger balance equals the sum of its entries
and equals paid - fees - commissions - refunds recounted from the payment and commission data."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from commerce_steps import Shop, call_kwargs

from shopstream.commerce.v1 import commerce_service_pb2 as pb
from shopstream.commerce.v1 import commissions_pb2 as cpb
from shopstream.commerce.v1 import order_pb2
from shopstream.commerce.v1 import payment_events_pb2 as pev
from shopstream_platform.kafka.cloudevents import headers_dict
from shopstream_platform.testing import read_since

pytestmark = pytest.mark.integration

OS = order_pb2


async def paid(shop: Shop, buyer: str, sku: str, quantity: int, key: str, **attr: str) -> Any:
    order = await shop.place(buyer, sku, quantity=quantity, key=key, **attr)
    await shop.wait_state(order, OS.ORDER_STATE_RESERVED)
    return (
        await shop.stub.PayOrder(
            pb.PayOrderRequest(order_id=order.order_id, card_token="tok_visa"),
            **call_kwargs(shop, "buyer", buyer),
        )
    ).order


def decoded(shop: Shop, topic: str, module: Any, since_ms: int, keys: set[str]) -> list[Any]:
    found = []
    for record in read_since(shop.commerce.runtime.settings.kafka, topic, since_ms):
        if (record.key() or b"").decode() in keys:
            kind = headers_dict(record.headers())["ce_type"].rsplit(".", 1)[-1]
            found.append(getattr(module, kind).FromString(record.value() or b""))
    return found


@pytest.mark.parametrize("commerce_overrides", [{"return_window_s": 6.0, "platform_fee_bps": 500}])
async def test_seller_ledger_balance_is_paid_less_fees_commissions_and_refunds(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    since_ms = int(time.time() * 1000) - 1_000
    seller, buyer, creator = ids("seller"), ids("buyer"), ids("creator")
    as_buyer, as_seller = call_kwargs(shop, "buyer", buyer), call_kwargs(shop, "seller", seller)
    product = await shop.listed_product(seller, stock=10, price=2_000)
    sku = product.skus[0].sku_id
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

    # Delivered, one of two units refunded, then completed: settled.
    delivered = await paid(shop, buyer, sku, 2, "delivered", creator_id=creator)
    await shop.stub.ShipOrder(
        pb.ShipOrderRequest(order_id=delivered.order_id, tracking_number="T-1"), **as_seller
    )
    await shop.stub.ConfirmDelivery(
        pb.ConfirmDeliveryRequest(order_id=delivered.order_id), **as_buyer
    )
    one = await shop.stub.RequestRefund(
        pb.RequestRefundRequest(
            order_id=delivered.order_id,
            lines=[pb.RefundLineRequest(line_id=delivered.lines[0].line_id, quantity=1)],
            reason="one broke",
        ),
        **as_buyer,
    )
    await shop.stub.ApproveRefund(
        pb.ApproveRefundRequest(refund_id=one.refund.refund_id), **as_seller
    )
    # Paid, then cancelled before shipping: nothing left for anyone.
    cancelled = await paid(shop, buyer, sku, 1, "cancelled")
    cancel = await shop.stub.RequestRefund(
        pb.RequestRefundRequest(
            order_id=cancelled.order_id, reason="mistake", type=pb.AFTER_SALE_TYPE_CANCEL
        ),
        **as_buyer,
    )
    await shop.stub.ApproveRefund(
        pb.ApproveRefundRequest(refund_id=cancel.refund.refund_id), **as_seller
    )
    # Shipped, not delivered yet: pending.
    shipped = await paid(shop, buyer, sku, 1, "shipped")
    await shop.stub.ShipOrder(
        pb.ShipOrderRequest(order_id=shipped.order_id, tracking_number="T-2"), **as_seller
    )
    await shop.wait_state(delivered, OS.ORDER_STATE_COMPLETED, timeout_s=30)

    async def settlement(order_id: str) -> cpb.OrderSettlement:
        return (
            await shop.stub.GetOrderSettlement(
                pb.GetOrderSettlementRequest(order_id=order_id), **as_seller
            )
        ).settlement

    def amounts(s: cpb.OrderSettlement) -> tuple[int, ...]:
        return (
            s.paid.amount_minor,
            s.platform_fee.amount_minor,
            s.creator_commission.amount_minor,
            s.refunds.amount_minor,
            s.net_payout.amount_minor,
        )

    a, b, c = [await settlement(o.order_id) for o in (delivered, cancelled, shipped)]
    # 4,000 paid; fee 5% = 200, half given back; commission 10% = 400, half clawed back.
    assert amounts(a) == (4_000, 100, 200, 2_000, 1_700)
    assert a.settled and a.HasField("settlement_date")
    assert amounts(b) == (2_000, 0, 0, 2_000, 0) and not b.settled
    assert amounts(c) == (2_000, 100, 0, 0, 1_900) and not c.settled
    assert not c.HasField("settlement_date")  # not delivered: no date yet

    balance = await shop.stub.GetSellerBalance(
        pb.GetSellerBalanceRequest(seller_id=seller), **as_seller
    )
    assert balance.balance.amount_minor == sum(e.amount.amount_minor for e in balance.entries)
    assert (balance.pending.amount_minor, balance.available.amount_minor) == (1_900, 1_700)
    assert balance.balance.amount_minor == sum(s.net_payout.amount_minor for s in (a, b, c))

    # Recounted from outside: payments from commerce.payments.v1, commissions from the
    # creator's ledger, fees from the settlements.
    order_ids = {delivered.order_id, cancelled.order_id, shipped.order_id}
    await shop.commerce.published()
    money = decoded(shop, "commerce.payments.v1", pev, since_ms, order_ids)
    charged = sum(
        e.amount.amount_minor
        for e in money
        if isinstance(e, pev.PaymentAttempted) and e.status == pev.PAYMENT_STATUS_SUCCEEDED
    )
    refunded = sum(e.amount.amount_minor for e in money if isinstance(e, pev.PaymentRefunded))
    earnings = await shop.stub.GetCreatorEarnings(
        pb.GetCreatorEarningsRequest(creator_id=creator), **call_kwargs(shop, "creator", creator)
    )
    fees = sum(s.platform_fee.amount_minor for s in (a, b, c))
    print(
        f"paid {charged} - fees {fees} - commissions {earnings.balance.amount_minor} - refunds "
        f"{refunded} = balance {balance.balance.amount_minor}"
    )
    assert (charged, refunded, earnings.balance.amount_minor) == (8_000, 4_000, 200)
    assert balance.balance.amount_minor == charged - fees - earnings.balance.amount_minor - refunded

    # Every entry is on commerce.seller-ledger.v1, and they add up to the balance.
    await shop.commerce.published()
    published = decoded(shop, "commerce.seller-ledger.v1", cpb, since_ms, {seller})
    assert sorted(e.entry.entry_id for e in published) == sorted(
        e.entry_id for e in balance.entries
    )
    assert sum(e.entry.amount.amount_minor for e in published) == balance.balance.amount_minor

    # A buyer does not see the seller's money.
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await shop.stub.GetSellerBalance(pb.GetSellerBalanceRequest(seller_id=seller), **as_buyer)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
