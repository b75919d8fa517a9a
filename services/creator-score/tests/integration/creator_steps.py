"""Publishing the social platform's and commerce's events the creator-score tests need."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc

from shopstream.ads.v1 import ads_events_pb2
from shopstream.commerce.v1 import live_pb2, order_events_pb2, order_pb2
from shopstream.common.v1 import money_pb2
from shopstream.creators.v1 import creator_score_service_pb2 as pb
from shopstream.creators.v1 import creator_score_service_pb2_grpc
from shopstream.social.v1 import creators_pb2 as social
from shopstream_creator_score.api.policy import POLICY
from shopstream_creator_score.settings import CreatorScoreSettings
from shopstream_creator_score.stream.topics import INPUT_TOPICS
from shopstream_creator_score.wiring import wire
from shopstream_platform.grpc.auth import TokenCodec
from shopstream_platform.kafka.cloudevents import CloudEventMeta
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.settings import KafkaSettings
from shopstream_platform.testing import (
    HostedService,
    fast_test_settings,
    hosted_service,
    start_group_at_end,
)

T0 = datetime(2026, 11, 1, tzinfo=UTC)
AUDIT = ("service", "audit")


@dataclass
class Market:
    service: HostedService
    stub: creator_score_service_pb2_grpc.CreatorScoreServiceStub
    producer: EventProducer
    tokens: TokenCodec
    # Every event sent, with its metadata, so a test can send them all again.
    sent: list[tuple[str, str, object, CloudEventMeta]]

    def auth(self) -> tuple[tuple[str, str]]:
        return (("authorization", f"Bearer {self.tokens.mint('seller', 'brand-1')}"),)

    async def send(self, topic: str, key: str, message: object, at: datetime) -> None:
        meta = self.producer.meta_for(message)  # type: ignore[arg-type]
        meta = CloudEventMeta(meta.id, meta.type, meta.source, at, meta.traceparent)
        await self.producer.publish_and_wait(topic, key, message, meta=meta)  # type: ignore[arg-type]
        self.sent.append((topic, key, message, meta))

    async def resend_all(self) -> None:
        for topic, key, message, meta in list(self.sent):
            await self.producer.publish_and_wait(topic, key, message, meta=meta)  # type: ignore[arg-type]

    async def profile(
        self,
        creator: str,
        followers: int,
        *,
        at: datetime = T0,
        mcn: str = "",
        categories: tuple[str, ...] = ("beauty",),
    ) -> None:
        message = social.CreatorProfile(
            creator_id=creator,
            display_name=f"{creator} creates",
            followers=followers,
            mcn_agency=mcn,
            declared_categories=list(categories),
        )
        message.at.FromDatetime(at)
        await self.send("social.creator-profiles.v1", creator, message, at)

    async def content(
        self, creator: str, content_id: str, views: int, engagements: int, *, at: datetime = T0
    ) -> None:
        message = social.ContentStats(
            content_id=content_id,
            creator_id=creator,
            kind=social.CONTENT_KIND_VIDEO,
            views=views,
            likes=engagements,
        )
        message.published_at.FromDatetime(at)
        message.at.FromDatetime(at)
        await self.send("social.content-stats.v1", creator, message, at)

    async def sale(
        self,
        creator: str,
        order_id: str,
        amount: int,
        *,
        category: str = "beauty",
        refund: int = 0,
        at: datetime = T0,
    ) -> None:
        order = order_pb2.Order(order_id=order_id, buyer_id="b", state=order_pb2.ORDER_STATE_PAID)
        order.total.CopyFrom(money_pb2.Money(amount_minor=amount, currency="GBP"))
        order.updated_at.FromDatetime(at)
        order.lines.add(
            line_id=f"{order_id}-1",
            sku_id="sku",
            product_id="p",
            seller_id="s",
            quantity=1,
            category_id=category,
            line_total=money_pb2.Money(amount_minor=amount, currency="GBP"),
            attribution=order_pb2.AttributionContext(creator_id=creator),
        )
        await self.send("commerce.orders.v1", order_id, order_events_pb2.OrderPaid(order=order), at)
        if refund:
            later = at + timedelta(hours=1)
            refunded = order_pb2.Order()
            refunded.CopyFrom(order)
            refunded.updated_at.FromDatetime(later)
            message = order_events_pb2.OrderRefunded(order=refunded, refund_id=f"{order_id}-r")
            message.lines.add(
                line_id=f"{order_id}-1",
                quantity=1,
                amount=money_pb2.Money(amount_minor=refund, currency="GBP"),
            )
            await self.send("commerce.orders.v1", order_id, message, later)

    async def live(
        self, creator: str, session_id: str, *, peak_viewers: int, at: datetime = T0
    ) -> None:
        """A live session started and ended an hour later (commerce.live.v1, key: session)."""
        session = live_pb2.LiveSession(
            live_session_id=session_id, creator_id=creator, state=live_pb2.LIVE_SESSION_STATE_LIVE
        )
        session.started_at.FromDatetime(at)
        await self.send(
            "commerce.live.v1", session_id, live_pb2.LiveSessionStarted(session=session), at
        )
        ended = live_pb2.LiveSession()
        ended.CopyFrom(session)
        ended.state = live_pb2.LIVE_SESSION_STATE_ENDED
        ended.ended_at.FromDatetime(at + timedelta(hours=1))
        ended.stats.peak_viewers = peak_viewers
        ended.stats.total_views = peak_viewers * 3
        await self.send(
            "commerce.live.v1",
            session_id,
            live_pb2.LiveSessionEnded(session=ended),
            at + timedelta(hours=1),
        )

    async def attribution(
        self,
        creators: list[str],
        order_id: str,
        amount: int,
        *,
        campaign: str = "camp-1",
        touch: str = "click-1",
        withdrawn: bool = False,
        at: datetime = T0,
    ) -> None:
        """An ad credit of an order (ads.attributions.v1, key: campaign)."""
        message = ads_events_pb2.Attribution(
            attribution_id=f"{order_id}:{touch}{':withdrawn' if withdrawn else ''}",
            order_id=order_id,
            buyer_id="b",
            campaign_id=campaign,
            touch=ads_events_pb2.TOUCH_TYPE_CLICK,
            touch_id=touch,
            amount=money_pb2.Money(amount_minor=-amount if withdrawn else amount, currency="GBP"),
            withdrawn=withdrawn,
            model_version="last-touch-v1",
            creator_ids=creators,
        )
        message.ordered_at.FromDatetime(at)
        await self.send("ads.attributions.v1", campaign, message, at)

    async def creator(
        self, creator_id: str, *, as_: tuple[str, str] = AUDIT
    ) -> pb.GetCreatorResponse:
        """GetCreator, by default as the platform's audit (exact ad sales: these tests check
        counting); test_ad_sales_privacy.py checks what sellers, advertisers, creators see."""
        token = self.tokens.mint(*as_)
        return await self.stub.GetCreator(
            pb.GetCreatorRequest(creator_id=creator_id),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=10,
        )

    async def eventually(self, check: Callable[[], object], timeout_s: float = 60) -> None:
        """Poll an async check until it stops raising AssertionError/NOT_FOUND."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            try:
                await check()  # type: ignore[misc]
                return
            except (AssertionError, grpc.aio.AioRpcError):
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def running_market(
    kafka: KafkaSettings, tmp_path: Path, app_prefix: str = "creator-score-test"
) -> AsyncIterator[Market]:
    """creator-score in this event loop (Faust memory tables, the real broker) and a producer
    of its inputs. A fresh Faust app (and consumer groups) per call: each test reads only its
    own events."""
    settings = CreatorScoreSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/cs.db",
        store="memory",
        data_dir=tmp_path / "faust",
        faust_app_id=f"{app_prefix}-{uuid.uuid4().hex[:8]}",
        publish_step=0.0,
        **fast_test_settings(kafka),
    )
    # Topics outlive test runs: start past what earlier runs left there.
    start_group_at_end(kafka, settings.faust_app_id, INPUT_TOPICS)
    producer = EventProducer(kafka, "shopstream/test-social")
    try:
        async with (
            hosted_service(settings, wire, policy=POLICY) as hosted,
            grpc.aio.insecure_channel(f"127.0.0.1:{hosted.port}") as channel,
        ):
            yield Market(
                hosted,
                creator_score_service_pb2_grpc.CreatorScoreServiceStub(channel),
                producer,
                TokenCodec(settings.auth),
                [],
            )
    finally:
        producer.close()
