"""FROZEN commissions through the topics and gRPC: a creator flagged for fake followers
(creators.scores.v1) and an order line whose ad click was flagged as invalid traffic
(ads.invalid-traffic.v1) have their commission held at settlement, not paid out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import grpc
import pytest
import sqlalchemy as sa
from commerce_steps import Shop, call_kwargs

from shopstream.ads.v1 import ads_events_pb2 as ads
from shopstream.commerce.v1 import commerce_service_pb2 as pb
from shopstream.commerce.v1 import commissions_pb2 as cpb
from shopstream.commerce.v1 import order_pb2
from shopstream.creators.v1 import creators_pb2 as creators
from shopstream_commerce.store.tables import flagged_clicks, risk_creators
from shopstream_platform.kafka.producer import EventProducer

pytestmark = pytest.mark.integration

OS = order_pb2


@pytest.mark.parametrize("commerce_overrides", [{"return_window_s": 2.0}])
async def test_a_frozen_commission_is_not_paid_out(shop: Shop, ids: Callable[[str], str]) -> None:
    seller, buyer = ids("seller"), ids("buyer")
    faker, honest = ids("faker"), ids("honest")
    bad_click = ids("clk")
    as_seller, as_buyer = call_kwargs(shop, "seller", seller), call_kwargs(shop, "buyer", buyer)
    product = await shop.listed_product(seller, stock=20, price=1_000)
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

    # The risk signals, as creator-score and ads publish them.
    now = datetime.now(UTC)
    flagged = creators.CreatorScoreChanged(
        creator=creators.Creator(creator_id=faker, flags=["FOLLOWER_SPIKE_WITHOUT_ENGAGEMENT"])
    )
    # Dated ahead: a creator-score stack on the shared broker scores this creator from our orders
    # too, unflagged, and commerce keeps the latest report of each creator.
    flagged.creator.updated_at.FromDatetime(now + timedelta(days=1))
    invalid = ads.InvalidTrafficFlagged(
        click_id=bad_click, buyer_id=buyer, reason=ads.INVALID_TRAFFIC_REASON_DEVICE_BURST
    )
    kafka = shop.commerce.runtime.settings.kafka
    producer = EventProducer(kafka, "shopstream/risk-test")
    await producer.publish_and_wait("creators.scores.v1", faker, flagged)
    await producer.publish_and_wait("ads.invalid-traffic.v1", buyer, invalid)
    producer.close()
    # Both signals heard: commerce holds them (counting consumed records would also count
    # other publishers' records on the shared topics).
    for _ in range(200):
        async with shop.commerce.runtime.db.read() as session:
            heard = [
                (
                    await session.execute(
                        sa.select(risk_creators.c.creator_id).where(
                            risk_creators.c.creator_id == faker
                        )
                    )
                ).first(),
                (
                    await session.execute(
                        sa.select(flagged_clicks.c.click_id).where(
                            flagged_clicks.c.click_id == bad_click
                        )
                    )
                ).first(),
            ]
        if all(heard):
            break
        await asyncio.sleep(0.1)
    assert all(heard)

    async def delivered(key: str, **attribution: str) -> OS.Order:
        order = await shop.place(buyer, sku, key=key, **attribution)
        await shop.wait_state(order, OS.ORDER_STATE_RESERVED)
        await shop.stub.PayOrder(
            pb.PayOrderRequest(order_id=order.order_id, card_token="tok_visa"), **as_buyer
        )
        await shop.stub.ShipOrder(
            pb.ShipOrderRequest(order_id=order.order_id, tracking_number="T"), **as_seller
        )
        await shop.stub.ConfirmDelivery(
            pb.ConfirmDeliveryRequest(order_id=order.order_id), **as_buyer
        )
        return order

    orders = [
        await delivered("faker", creator_id=faker),
        await delivered("bad-click", creator_id=honest, ad_click_id=bad_click),
        await delivered("clean", creator_id=honest),
    ]
    for order in orders:
        await shop.wait_state(order, OS.ORDER_STATE_COMPLETED, timeout_s=30)

    async def earnings(creator: str) -> pb.GetCreatorEarningsResponse:
        deadline = time.monotonic() + 10
        while True:
            got = await shop.stub.GetCreatorEarnings(
                pb.GetCreatorEarningsRequest(creator_id=creator),
                **call_kwargs(shop, "creator", creator),
            )
            if got.pending.amount_minor == 0 or time.monotonic() > deadline:
                return got
            await asyncio.sleep(0.1)

    fake = await earnings(faker)
    assert (fake.pending.amount_minor, fake.available.amount_minor, fake.frozen.amount_minor) == (
        0,
        0,
        100,
    )
    (held,) = [e for e in fake.entries if e.kind == cpb.LEDGER_ENTRY_KIND_FROZEN]
    assert held.account == cpb.LEDGER_ACCOUNT_FROZEN
    assert held.frozen_reason == "creator flagged: FOLLOWER_SPIKE_WITHOUT_ENGAGEMENT"
    assert fake.balance.amount_minor == sum(e.amount.amount_minor for e in fake.entries) == 100

    mixed = await earnings(honest)
    # The clean sale is paid out; the one through the invalid click is held.
    assert (mixed.available.amount_minor, mixed.frozen.amount_minor) == (100, 100)
    (held,) = [e for e in mixed.entries if e.kind == cpb.LEDGER_ENTRY_KIND_FROZEN]
    assert held.frozen_reason == "ad click flagged: DEVICE_BURST"
    assert held.order_id == orders[1].order_id
    frozen_total = shop.commerce.metric(
        "shopstream_commerce_frozen_commission_minor_total", {"currency": "GBP"}
    )
    assert frozen_total == 200
