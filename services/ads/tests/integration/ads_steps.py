"""Driving ads from outside: the edge's traffic topics, commerce's order events, the gRPC API."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import grpc
from confluent_kafka import Message
from google.protobuf.message import Message as ProtoMessage

from shopstream.ads.v1 import ads_events_pb2 as ev
from shopstream.ads.v1 import ads_pb2, ads_service_pb2_grpc
from shopstream.ads.v1 import ads_service_pb2 as pb
from shopstream.commerce.v1 import order_events_pb2, order_pb2
from shopstream.common.v1 import money_pb2
from shopstream_ads.api.policy import POLICY
from shopstream_ads.settings import AdsSettings
from shopstream_ads.store.tables import MIGRATIONS
from shopstream_ads.topics import TOPICS
from shopstream_ads.usecases import conversions, invalid_traffic
from shopstream_ads.wiring import conversions_group, invalid_traffic_group, wire
from shopstream_platform.grpc.auth import TokenCodec
from shopstream_platform.kafka.cloudevents import CloudEventMeta
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.settings import KafkaSettings
from shopstream_platform.testing import (
    HostedService,
    fast_test_settings,
    hosted_service,
    read_all_async,
    start_group_at_end,
)

T = TypeVar("T")
NOW = datetime.now(UTC).replace(microsecond=0)
USD = "USD"
AUDIT = ("service", "audit")


def usd(minor: int) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=minor, currency=USD)


@dataclass
class AdsWorld:
    service: HostedService
    stub: ads_service_pb2_grpc.AdsServiceStub
    producer: EventProducer
    tokens: TokenCodec
    kafka: KafkaSettings
    # Every input record sent (topic, key, message, metadata), so a test can replay them.
    sent: list[tuple[str, str, ProtoMessage, CloudEventMeta]] = field(default_factory=list)
    # Topics outlive a test run and each test's worker reads them from the start: every id a
    # test names (buyers, advertisers, orders, clicks) is made unique to this run.
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    # Outputs are read from here on (records carry the broker's append time), not from the
    # topics' start: the shared broker holds millions of other runs' records.
    since_ms: int = field(default_factory=lambda: int(time.time() * 1000) - 5_000)
    _n: int = 0

    def auth(self, role: str = "admin", ident: str = "ops") -> tuple[tuple[str, str]]:
        return (("authorization", f"Bearer {self.tokens.mint(role, ident)}"),)

    @property
    def worker(self) -> str:
        """This world's attribution worker (its Faust app id)."""
        # The runtime holds its settings as the platform base class; this one is AdsSettings.
        settings: AdsSettings = self.service.runtime.settings  # type: ignore[assignment]
        return settings.faust_app_id

    def next_id(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}-{self.run}-{self._n}"

    def who(self, name: str) -> str:
        return f"{name}-{self.run}"

    async def send(self, topic: str, key: str, message: ProtoMessage, at: datetime) -> None:
        base = self.producer.meta_for(message, subject=key)
        meta = CloudEventMeta(base.id, base.type, base.source, at, base.traceparent, key)
        await self.producer.publish_and_wait(topic, key, message, meta=meta)
        self.sent.append((topic, key, message, meta))

    async def replay(self) -> None:
        """Every input again, same ids and headers: what re-reading the topics would deliver."""
        for topic, key, message, meta in list(self.sent):
            await self.producer.publish_and_wait(topic, key, message, meta=meta)

    # --- API ----------------------------------------------------------------------------------

    async def campaign(
        self,
        advertiser: str,
        *,
        bid: int = 100,
        bid_type: int = ads_pb2.BID_TYPE_CPC,
        daily: int = 100_000,
        total: int = 1_000_000,
        products: tuple[str, ...] = ("prod-1",),
        placements: tuple[str, ...] = (),
        attribution: ads_pb2.CampaignAttribution | None = None,
    ) -> ads_pb2.Campaign:
        advertiser = self.who(advertiser)
        response = await self.stub.CreateCampaign(
            pb.CreateCampaignRequest(
                request_id=self.next_id("req"),
                advertiser_id=advertiser,
                name=f"{advertiser} spring sale",
                promoted_product_ids=products,
                bid_type=bid_type,  # type: ignore[arg-type]
                bid=usd(bid),
                daily_budget=usd(daily),
                total_budget=usd(total),
                placements=placements,
                attribution=attribution,
            ),
            metadata=self.auth("seller", advertiser),
            timeout=10,
        )
        return response.campaign

    async def report(
        self,
        campaign: ads_pb2.Campaign,
        *,
        noise: bool = False,
        as_: tuple[str, str] | None = None,
        from_day: str = "",
        to_day: str = "",
    ) -> pb.GetCampaignReportResponse:
        """The report as its advertiser (a seller token) sees it, or as `as_` (role, id)."""
        role, ident = as_ or ("seller", campaign.advertiser_id)
        return await self.stub.GetCampaignReport(
            pb.GetCampaignReportRequest(
                campaign_id=campaign.campaign_id, noise=noise, from_day=from_day, to_day=to_day
            ),
            metadata=self.auth(role, ident),
            timeout=10,
        )

    async def audit(self, campaign: ads_pb2.Campaign) -> pb.GetCampaignReportResponse:
        """Exact cells: the platform's audit principal."""
        return await self.report(campaign, as_=AUDIT)

    # --- edge traffic ---------------------------------------------------------------------

    async def impression(
        self,
        buyer: str,
        campaign: ads_pb2.Campaign,
        at: datetime,
        *,
        consent: bool = True,
        install: str = "",
        watched_ms: int = 0,
    ) -> str:
        buyer = self.who(buyer)
        impression_id = self.next_id("imp")
        message = ads_pb2.Impression(
            impression_id=impression_id,
            campaign_id=campaign.campaign_id,
            buyer_id=buyer,
            placement="feed",
            tracking_consent=consent,
            install_id=self.who(install) if install else f"install-{buyer}",
            watched_ms=watched_ms,
        )
        message.at.FromDatetime(at)
        await self.send("ads.impressions.v1", buyer, message, at)
        return impression_id

    async def click(
        self,
        buyer: str,
        campaign: ads_pb2.Campaign,
        at: datetime,
        *,
        impression_id: str = "",
        consent: bool = True,
        install: str = "",
        click_id: str = "",
    ) -> str:
        """A click on a fresh impression a minute earlier (unless one is given); `click_id`: an
        id handed out earlier (an order already named it)."""
        if not impression_id:
            impression_id = await self.impression(
                buyer, campaign, at - timedelta(minutes=1), consent=consent, install=install
            )
        buyer = self.who(buyer)
        click_id = click_id or self.next_id("clk")
        message = ads_pb2.Click(
            click_id=click_id,
            impression_id=impression_id,
            campaign_id=campaign.campaign_id,
            buyer_id=buyer,
            placement="feed",
            tracking_consent=consent,
            install_id=self.who(install) if install else f"install-{buyer}",
        )
        message.at.FromDatetime(at)
        await self.send("ads.clicks.v1", message.install_id, message, at)
        return click_id

    # --- commerce's order events ----------------------------------------------------------

    def _order(
        self,
        order_id: str,
        buyer: str,
        amount: int,
        at: datetime,
        consent: bool,
        click_id: str,
        creator: str = "",
    ) -> order_pb2.Order:
        order = order_pb2.Order(
            order_id=order_id,
            buyer_id=buyer,
            state=order_pb2.ORDER_STATE_PAID,
            total=usd(amount),
            tracking_consent=consent,
        )
        line = order.lines.add(line_id="l1", sku_id="sku-1", product_id="prod-1", quantity=1)
        line.unit_price.CopyFrom(usd(amount))
        line.line_total.CopyFrom(usd(amount))
        line.attribution.ad_click_id = click_id
        line.attribution.creator_id = creator
        order.updated_at.FromDatetime(at)
        return order

    async def paid_order(
        self,
        buyer: str,
        amount: int,
        at: datetime,
        *,
        consent: bool = True,
        click_id: str = "",
        creator: str = "",
    ) -> str:
        """A paid order; `creator` (an id used as is) sold its line."""
        buyer = self.who(buyer)
        order_id = self.next_id("ord")
        paid = order_events_pb2.OrderPaid(
            order=self._order(order_id, buyer, amount, at, consent, click_id, creator),
            payment_id=f"pay-{order_id}",
        )
        paid.paid_at.FromDatetime(at)
        await self.send("commerce.orders.v1", order_id, paid, at)
        return order_id

    async def refund(self, buyer: str, order_id: str, amount: int, paid: int, at: datetime) -> None:
        buyer = self.who(buyer)
        refunded = order_events_pb2.OrderRefunded(
            order=self._order(order_id, buyer, paid, at, True, ""),
            refund_id=f"rf-{order_id}",
            amount=usd(amount),
        )
        await self.send("commerce.orders.v1", order_id, refunded, at)

    # --- observing ------------------------------------------------------------------------

    async def records(
        self,
        topic: str,
        message_type: type[T],
        expect: int,
        keep: Callable[[T], bool],
        timeout_s: float = 60,
    ) -> list[T]:
        def decode(m: Message) -> T | None:
            headers = dict(m.headers() or [])
            ce_type = headers.get("ce_type", b"")
            name = message_type.DESCRIPTOR.full_name  # type: ignore[attr-defined]
            if (ce_type.decode() if isinstance(ce_type, bytes) else ce_type) != name:
                return None
            value = message_type()
            value.ParseFromString(m.value())  # type: ignore[attr-defined]
            # Another ads deployment on the shared broker (a test running beside this one)
            # decides the same inputs too: only this world's worker's outputs count.
            worker = getattr(value, "worker", "")
            if worker and worker != self.worker:
                return None
            return value

        # A worker that re-runs inputs after a rebalance (a loaded machine) re-emits identical
        # events with the same ce_id, which subscribers deduplicate: so do we.
        seen: set[bytes] = set()

        def match(m: Message) -> bool:
            value = decode(m)
            if value is None or not keep(value):
                return False
            ce_id = dict(m.headers() or []).get("ce_id", b"")
            ce_id = ce_id if isinstance(ce_id, bytes) else ce_id.encode()
            if ce_id in seen:
                return False
            seen.add(ce_id)
            return True

        found = await read_all_async(
            self.kafka,
            topic,
            expect=expect,
            timeout_s=timeout_s,
            match=match,
            since_ms=self.since_ms,
        )
        return [v for v in (decode(m) for m in found) if v is not None]

    async def attributions(self, order_ids: set[str], expect: int) -> list[ev.Attribution]:
        return await self.records(
            "ads.attributions.v1", ev.Attribution, expect, lambda a: a.order_id in order_ids
        )

    async def credits(self, order_ids: set[str]) -> dict[str, ev.Attribution]:
        """Each order's current credit: credits folded with later withdrawals (a touch that
        arrived after its order takes the credit over); refunds are left out."""
        records = await self.records(
            "ads.attributions.v1", ev.Attribution, 1_000_000, lambda a: a.order_id in order_ids, 3
        )
        current: dict[str, ev.Attribution] = {}
        for a in records:
            if a.withdrawn:
                if a.order_id in current and current[a.order_id].touch_id == a.touch_id:
                    del current[a.order_id]
            elif not a.refund:
                current[a.order_id] = a
        return current

    async def credited_to(
        self, expected: dict[str, str], uncredited: frozenset[str] = frozenset()
    ) -> dict[str, ev.Attribution]:
        """Wait until exactly these orders are credited, each to the expected touch id, and the
        `uncredited` ones are not."""

        async def check() -> dict[str, ev.Attribution] | None:
            found = await self.credits(set(expected) | uncredited)
            return found if {o: a.touch_id for o, a in found.items()} == expected else None

        return await eventually(check)

    async def flagged(self, click_ids: set[str], expect: int) -> list[ev.InvalidTrafficFlagged]:
        return await self.records(
            "ads.invalid-traffic.v1",
            ev.InvalidTrafficFlagged,
            expect,
            lambda f: f.click_id in click_ids,
        )


async def eventually(check: Callable[[], Awaitable[T | None]], timeout_s: float = 60.0) -> T:
    """Poll until `check` returns something truthy; its last value on time-out is an error."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"not reached within {timeout_s} s (last: {last!r})")


@contextlib.asynccontextmanager
async def running_ads(
    kafka: KafkaSettings, tmp_path: Path, app_prefix: str = "ads-test", **overrides: Any
) -> AsyncIterator[AdsWorld]:
    """Ads in this event loop (Faust memory tables, SQLite, the real broker), with a fresh Faust
    app whose consumer groups start at the topics' current end, not their history."""
    settings = AdsSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/ads.db",
        store="memory",
        data_dir=tmp_path / "faust",
        faust_app_id=f"{app_prefix}-{uuid.uuid4().hex[:8]}",
        **{**fast_test_settings(kafka), **overrides},
    )
    start_group_at_end(kafka, settings.faust_app_id, TOPICS)
    start_group_at_end(
        kafka, f"ads.{conversions_group(settings)}", [conversions.ATTRIBUTIONS_TOPIC]
    )
    start_group_at_end(
        kafka, f"ads.{invalid_traffic_group(settings)}", [invalid_traffic.INVALID_TOPIC]
    )
    producer = EventProducer(kafka, "shopstream/test-edge")
    try:
        async with (
            hosted_service(settings, wire, policy=POLICY, migrations=MIGRATIONS) as hosted,
            grpc.aio.insecure_channel(f"127.0.0.1:{hosted.port}") as channel,
        ):
            yield AdsWorld(
                hosted,
                ads_service_pb2_grpc.AdsServiceStub(channel),
                producer,
                TokenCodec(settings.auth),
                kafka,
            )
    finally:
        producer.close()
