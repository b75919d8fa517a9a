"""Live stats split by product and scheduled sessions, through gRPC and commerce.live.v1."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
import pytest
from commerce_steps import Shop, call_kwargs

from shopstream.commerce.v1 import commerce_service_pb2 as pb
from shopstream.commerce.v1 import live_pb2, order_pb2
from shopstream.social.v1 import live_pb2 as social
from shopstream_platform.kafka.cloudevents import headers_dict
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.testing import read_since

pytestmark = pytest.mark.integration

OS = order_pb2


async def test_live_stats_per_product(shop: Shop, ids: Callable[[str], str]) -> None:
    since_ms = int(time.time() * 1000) - 1_000
    seller, buyer, creator = ids("seller"), ids("buyer"), ids("creator")
    scarf = await shop.listed_product(seller, stock=20, price=1_500)
    hat = await shop.listed_product(seller, stock=20, price=4_000)
    started = await shop.stub.StartLiveSession(
        pb.StartLiveSessionRequest(
            creator_id=creator,
            title="Winter haul",
            pinned_product_ids=[scarf.product_id, hat.product_id],
        ),
        **call_kwargs(shop, "creator", creator),
    )
    session_id = started.session.live_session_id
    producer = EventProducer(shop.commerce.runtime.settings.kafka, "shopstream/social-test")
    await producer.publish_and_wait(
        "social.live-stats.v1",
        session_id,
        social.LiveViewStats(
            live_session_id=session_id, creator_id=creator, current_viewers=50, total_views=1_000
        ),
    )
    producer.close()

    async def sale(product_sku: str, quantity: int, key: str) -> None:
        order = await shop.place(
            buyer, product_sku, quantity=quantity, key=key, live_session_id=session_id
        )
        await shop.wait_state(order, OS.ORDER_STATE_RESERVED)
        await shop.stub.PayOrder(
            pb.PayOrderRequest(order_id=order.order_id, card_token="tok_visa"),
            **call_kwargs(shop, "buyer", buyer),
        )

    await sale(scarf.skus[0].sku_id, 1, "scarf-1")
    await sale(scarf.skus[0].sku_id, 3, "scarf-2")
    await sale(hat.skus[0].sku_id, 1, "hat-1")

    for _ in range(100):
        live = (
            await shop.stub.GetLiveSession(
                pb.GetLiveSessionRequest(live_session_id=session_id), timeout=10
            )
        ).session
        if live.stats.orders == 3 and live.stats.total_views == 1_000:
            break
        await asyncio.sleep(0.1)
    by_product = [
        (p.product_id, p.orders, p.units, p.gmv.amount_minor, p.gpm_minor) for p in live.products
    ]
    # Largest GMV first; GPM per product over the session's 1,000 views.
    assert by_product == [
        (scarf.product_id, 2, 4, 6_000, 6_000),
        (hat.product_id, 1, 1, 4_000, 4_000),
    ]
    assert live.stats.gmv.amount_minor == sum(p.gmv.amount_minor for p in live.products)
    await shop.commerce.published()
    updates = [
        live_pb2.LiveStatsUpdated.FromString(r.value() or b"")
        for r in read_since(shop.commerce.runtime.settings.kafka, "commerce.live.v1", since_ms)
        if r.key() == session_id.encode()
        and headers_dict(r.headers())["ce_type"] == "shopstream.commerce.v1.LiveStatsUpdated"
    ]
    assert [(p.product_id, p.units) for p in updates[-1].products] == [
        (scarf.product_id, 4),
        (hat.product_id, 1),
    ]


async def test_a_scheduled_session_is_announced_then_started_by_its_creator(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    since_ms = int(time.time() * 1000) - 1_000
    creator, seller = ids("creator"), ids("seller")
    scarf = await shop.listed_product(seller, stock=5)
    as_creator = call_kwargs(shop, "creator", creator)
    request = pb.ScheduleLiveSessionRequest(
        creator_id=creator, title="Sunday scarves", pinned_product_ids=[scarf.product_id]
    )
    request.starts_at.FromSeconds(int(time.time()) + 600)  # 10 minutes: too soon
    with pytest.raises(grpc.aio.AioRpcError) as too_soon:
        await shop.stub.ScheduleLiveSession(request, **as_creator)
    assert too_soon.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "starts_at" in (too_soon.value.details() or "")
    at = int(time.time()) + 3_600
    request.starts_at.FromSeconds(at)
    scheduled = (await shop.stub.ScheduleLiveSession(request, **as_creator)).session
    assert scheduled.state == live_pb2.LIVE_SESSION_STATE_SCHEDULED
    assert scheduled.scheduled_for.seconds == at
    session_id = scheduled.live_session_id
    with pytest.raises(grpc.aio.AioRpcError) as someone_else:
        await shop.stub.StartLiveSession(
            pb.StartLiveSessionRequest(live_session_id=session_id),
            **call_kwargs(shop, "creator", ids("creator")),
        )
    assert someone_else.value.code() == grpc.StatusCode.PERMISSION_DENIED
    live = (
        await shop.stub.StartLiveSession(
            pb.StartLiveSessionRequest(live_session_id=session_id), **as_creator
        )
    ).session
    assert live.state == live_pb2.LIVE_SESSION_STATE_LIVE
    assert list(live.pinned_product_ids) == [scarf.product_id]
    assert live.scheduled_for.seconds == at and live.started_at.seconds < at
    with pytest.raises(grpc.aio.AioRpcError) as twice:
        await shop.stub.StartLiveSession(
            pb.StartLiveSessionRequest(live_session_id=session_id), **as_creator
        )
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await shop.commerce.published()
    kinds = [
        headers_dict(r.headers())["ce_type"].rsplit(".", 1)[-1]
        for r in read_since(shop.commerce.runtime.settings.kafka, "commerce.live.v1", since_ms)
        if r.key() == session_id.encode()
    ]
    assert kinds == ["LiveSessionScheduled", "LiveSessionStarted"]
