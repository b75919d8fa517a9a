"""Creator earnings and live sessions, through gRPC and the social topic."""

import asyncio
from collections.abc import Callable

import pytest
from commerce_steps import Shop, call_kwargs

from shopstream.commerce.v1 import commerce_service_pb2 as pb
from shopstream.commerce.v1 import commissions_pb2, live_pb2, order_pb2
from shopstream.social.v1 import live_pb2 as social
from shopstream_platform.kafka.cloudevents import headers_dict
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.testing import read_all_async

pytestmark = pytest.mark.integration
OS = order_pb2
K = commissions_pb2


async def paid_order(
    shop: Shop, buyer: str, sku: str, key: str, **attribution: str
) -> order_pb2.Order:
    order = await shop.place(buyer, sku, key=key, **attribution)
    await shop.wait_state(order, OS.ORDER_STATE_RESERVED)
    paid = await shop.stub.PayOrder(
        pb.PayOrderRequest(order_id=order.order_id, card_token="tok_visa"),
        **call_kwargs(shop, "buyer", buyer),
    )
    return paid.order


async def test_three_accruals_one_reversal_and_a_cut_waits(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    seller, buyer, creator = ids("seller"), ids("buyer"), ids("creator")
    product = await shop.listed_product(seller, stock=20, price=2_500)
    sku = product.skus[0].sku_id
    await shop.place(buyer, sku, key="warm-up")  # waits until commerce knows the product
    rate = await shop.stub.SetCommissionRate(
        pb.SetCommissionRateRequest(
            seller_id=seller, product_id=product.product_id, rate_bps=1_000
        ),
        **call_kwargs(shop, "seller", seller),
    )
    assert rate.previous_rate_bps == 0

    orders = [await paid_order(shop, buyer, sku, f"k{i}", creator_id=creator) for i in range(3)]
    refund = await shop.stub.RequestRefund(
        pb.RequestRefundRequest(order_id=orders[0].order_id, reason="faulty"),
        **call_kwargs(shop, "buyer", buyer),
    )
    await shop.stub.ApproveRefund(
        pb.ApproveRefundRequest(refund_id=refund.refund.refund_id),
        **call_kwargs(shop, "seller", seller),
    )

    # A cut today does not reach this creator, who promoted the product: locked for 30 days.
    cut = await shop.stub.SetCommissionRate(
        pb.SetCommissionRateRequest(seller_id=seller, product_id=product.product_id, rate_bps=500),
        **call_kwargs(shop, "seller", seller),
    )
    assert list(cut.locked_creator_ids) == [creator]
    assert cut.locked_until_unix - (orders[0].placed_at.seconds) >= 29 * 86_400
    await paid_order(shop, buyer, sku, "after-cut", creator_id=creator)

    earnings = await shop.stub.GetCreatorEarnings(
        pb.GetCreatorEarningsRequest(creator_id=creator), **call_kwargs(shop, "creator", creator)
    )
    kinds = [e.kind for e in earnings.entries]
    assert kinds.count(K.LEDGER_ENTRY_KIND_ACCRUAL) == 4
    assert kinds.count(K.LEDGER_ENTRY_KIND_REVERSAL) == 1
    # Every accrual at 10% of 25.00, the reversal takes one back; the balance is their sum.
    assert sorted(e.amount.amount_minor for e in earnings.entries) == [-250, 250, 250, 250, 250]
    assert (
        earnings.balance.amount_minor == sum(e.amount.amount_minor for e in earnings.entries) == 750
    )
    assert earnings.pending.amount_minor == 750 and earnings.available.amount_minor == 0
    # Subscribers see the same ledger on commerce.commissions.v1 (key: creator), beside the
    # creator's notice of the cut.
    entry_type = "shopstream.commerce.v1.LedgerEntryRecorded"
    records = await read_all_async(
        shop.commerce.runtime.settings.kafka,
        "commerce.commissions.v1",
        expect=5,
        timeout_s=30,
        match=lambda r: (
            r.key() == creator.encode() and headers_dict(r.headers())["ce_type"] == entry_type
        ),
        since_ms=shop.since_ms,
    )
    published = [K.LedgerEntryRecorded.FromString(r.value() or b"").entry for r in records]
    assert sorted(e.amount.amount_minor for e in published) == [-250, 250, 250, 250, 250]

    # Creators see only their own earnings.
    with pytest.raises(Exception) as denied:
        await shop.stub.GetCreatorEarnings(
            pb.GetCreatorEarningsRequest(creator_id=creator),
            **call_kwargs(shop, "creator", "someone-else"),
        )
    assert "PERMISSION_DENIED" in str(denied.value)


@pytest.mark.parametrize("commerce_overrides", [{"rate_cut_notice_s": 1.0, "return_window_s": 0.5}])
async def test_cut_applies_after_notice_and_commission_settles(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    seller, buyer, creator = ids("seller"), ids("buyer"), ids("creator")
    product = await shop.listed_product(seller, stock=20, price=1_000)
    sku = product.skus[0].sku_id
    await shop.place(buyer, sku, key="warm-up")

    async def set_rate(bps: int) -> None:
        await shop.stub.SetCommissionRate(
            pb.SetCommissionRateRequest(
                seller_id=seller, product_id=product.product_id, rate_bps=bps
            ),
            **call_kwargs(shop, "seller", seller),
        )

    await set_rate(2_000)
    before = await paid_order(shop, buyer, sku, "before", creator_id=creator)
    await set_rate(1_000)  # the creator promoted it: keeps 20% for the 1 s lock
    await asyncio.sleep(1.2)
    after = await paid_order(shop, buyer, sku, "after", creator_id=creator)
    for order in (before, after):
        await shop.stub.ShipOrder(
            pb.ShipOrderRequest(order_id=order.order_id, tracking_number="T"),
            **call_kwargs(shop, "seller", seller),
        )
        await shop.stub.ConfirmDelivery(
            pb.ConfirmDeliveryRequest(order_id=order.order_id), **call_kwargs(shop, "buyer", buyer)
        )
    for _ in range(100):
        earnings = await shop.stub.GetCreatorEarnings(
            pb.GetCreatorEarningsRequest(creator_id=creator),
            **call_kwargs(shop, "creator", creator),
        )
        if earnings.available.amount_minor == 300:
            break
        await asyncio.sleep(0.1)
    accruals = sorted(
        e.amount.amount_minor for e in earnings.entries if e.kind == K.LEDGER_ENTRY_KIND_ACCRUAL
    )
    assert accruals == [100, 200]
    assert (earnings.pending.amount_minor, earnings.available.amount_minor) == (0, 300)
    assert earnings.balance.amount_minor == sum(e.amount.amount_minor for e in earnings.entries)


async def test_live_session_gmv_and_gpm(
    shop: Shop, ids: Callable[[str], str], kafka_settings
) -> None:  # type: ignore[no-untyped-def]
    seller, buyer, creator = ids("seller"), ids("buyer"), ids("creator")
    product = await shop.listed_product(seller, stock=20, price=1_500)
    sku = product.skus[0].sku_id
    started = await shop.stub.StartLiveSession(
        pb.StartLiveSessionRequest(
            creator_id=creator, title="Scarf haul", pinned_product_ids=[product.product_id]
        ),
        **call_kwargs(shop, "creator", creator),
    )
    session_id = started.session.live_session_id
    assert list(started.session.pinned_product_ids) == [product.product_id]

    producer = EventProducer(kafka_settings, "shopstream/social-test")
    for viewers, views in ((120, 800), (300, 2_000), (250, 1_900)):  # the last one arrives late
        stats = social.LiveViewStats(
            live_session_id=session_id,
            creator_id=creator,
            current_viewers=viewers,
            total_views=views,
        )
        await producer.publish_and_wait("social.live-stats.v1", session_id, stats)
    producer.close()
    for key in ("a", "b"):
        await paid_order(shop, buyer, sku, key, creator_id=creator, live_session_id=session_id)
    await paid_order(shop, buyer, sku, "not-live")  # not attributed to the session

    for _ in range(100):
        live = (
            await shop.stub.GetLiveSession(
                pb.GetLiveSessionRequest(live_session_id=session_id), timeout=10
            )
        ).session
        if live.stats.total_views == 2_000 and live.stats.orders == 2:
            break
        await asyncio.sleep(0.1)
    assert live.stats.orders == 2
    assert live.stats.gmv.amount_minor == 3_000
    assert live.stats.total_views == 2_000 and live.stats.peak_viewers == 300
    assert live.stats.gpm_minor == 3_000 * 1_000 // 2_000
    # The running stats are published on commerce.live.v1 as they change.
    updates = await read_all_async(
        shop.commerce.runtime.settings.kafka,
        "commerce.live.v1",
        expect=10**6,
        timeout_s=3,
        match=lambda r: r.key() == session_id.encode(),
        since_ms=shop.since_ms,
    )
    stats = [
        live_pb2.LiveStatsUpdated.FromString(r.value() or b"").stats
        for r in updates
        if headers_dict(r.headers())["ce_type"] == "shopstream.commerce.v1.LiveStatsUpdated"
    ]
    assert (stats[-1].orders, stats[-1].gmv.amount_minor) == (2, 3_000)
    ended = await shop.stub.EndLiveSession(
        pb.EndLiveSessionRequest(live_session_id=session_id),
        **call_kwargs(shop, "creator", creator),
    )
    assert ended.session.state == 2
