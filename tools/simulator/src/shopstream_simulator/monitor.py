"""What the live view shows, gathered while the run goes on: the services' counters (scraped),
top creators per category, campaign reports, and how the fraudsters fare."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from grpc import aio

from shopstream.ads.v1 import ads_service_pb2
from shopstream.creators.v1 import creator_score_service_pb2 as cs
from shopstream.creators.v1 import creators_pb2
from shopstream_platform.grpc.auth import TokenCodec
from shopstream_simulator.clients import ADMIN, AUDIT, Rpc, Services
from shopstream_simulator.config import SimConfig
from shopstream_simulator.context import Context
from shopstream_simulator.lag import LagReader
from shopstream_simulator.ledger import Ledger
from shopstream_simulator.scrape import Samples, scrape

TOP_PER_CATEGORY = 3
INPUTS = "shopstream_creator_score_inputs_total"

# (service, sample name, label to split by or "") → summary key prefix, for the run's deltas.
OBSERVED = (
    ("commerce", "shopstream_commerce_gmv_minor_total", "currency", "commerce.gmv_minor"),
    ("commerce", "shopstream_commerce_refunded_minor_total", "currency", "commerce.refunded_minor"),
    ("commerce", "shopstream_commerce_refunds_total", "", "commerce.refunds"),
    ("commerce", "shopstream_commerce_payments_total", "status", "commerce.payments"),
    ("commerce", "shopstream_commerce_live_gmv_minor_total", "currency", "commerce.live_gmv_minor"),
    ("commerce", "shopstream_commerce_package_outcomes_total", "outcome", "commerce.packages"),
    ("catalog", "shopstream_catalog_suppressions_total", "", "catalog.suppressions"),
    (
        "catalog",
        "shopstream_catalog_storage_fees_minor_total",
        "currency",
        "catalog.storage_fees_minor",
    ),
    (
        "catalog",
        "shopstream_catalog_listing_decisions_total",
        "reason",
        "catalog.listing_decisions",
    ),
    ("ads", "shopstream_ads_flagged_clicks_total", "reason", "ads.flagged_clicks"),
    ("ads", "shopstream_ads_impressions_total", "", "ads.impressions"),
    ("ads", "shopstream_ads_clicks_total", "", "ads.clicks"),
    ("ads", "shopstream_ads_spend_minor_total", "currency", "ads.spend_minor"),
    ("ads", "shopstream_ads_attributed_gmv_minor_total", "currency", "ads.attributed_gmv_minor"),
    ("ads", "shopstream_ads_attributions_total", "touch", "ads.attributions"),
    ("creator-score", "shopstream_creator_score_inputs_total", "source", "creator_score.inputs"),
)


@dataclass(frozen=True)
class CreatorRow:
    creator_id: str
    name: str
    score: float
    tier: int
    authenticity: float
    flags: tuple[str, ...]
    followers: int
    gmv_minor: int
    mine: bool
    # In a category's top list: the standing it is ranked by (0-100) and the rank.
    standing: float | None = None
    rank: int | None = None


@dataclass(frozen=True)
class CampaignRow:
    campaign_id: str
    name: str
    impressions: int
    clicks: int
    spend_minor: int
    gmv_minor: int | None
    roas: float | None
    orders: int | None


@dataclass
class Snapshot:
    metrics: dict[str, Samples | None] = field(default_factory=dict)
    baseline: dict[str, Samples | None] = field(default_factory=dict)
    top: dict[str, list[CreatorRow]] = field(default_factory=dict)
    campaigns: list[CampaignRow] = field(default_factory=list)
    fakes: list[CreatorRow] = field(default_factory=list)
    refreshed_at: float = 0.0
    # Records behind per service (every consumer group, Faust workers and combiners included),
    # read from Kafka; empty when Kafka did not answer. The largest seen while traffic ran.
    lag: dict[str, int] = field(default_factory=dict)
    lag_groups: dict[str, int] = field(default_factory=dict)
    max_lag: dict[str, int] = field(default_factory=dict)
    max_lag_at_s: dict[str, float] = field(default_factory=dict)
    lag_readings: int = 0
    # The stream workers' backlog in events: what the simulator had acknowledged by Kafka and the
    # service has not counted yet (ads: impressions; creator-score: content stats and profiles).
    # Committed offsets trail a Faust worker's progress (it commits every few seconds, and its
    # input is transactional: every commit marker is an offset too), so this is the live measure.
    behind: dict[str, int] = field(default_factory=dict)
    max_behind: dict[str, int] = field(default_factory=dict)

    def delta(self, service: str, name: str, **match: str) -> float | None:
        now, before = self.metrics.get(service), self.baseline.get(service)
        if now is None:
            return None
        return now.total(name, **match) - (before.total(name, **match) if before else 0.0)

    def delta_by(self, service: str, name: str, label: str, **match: str) -> dict[str, float]:
        now, before = self.metrics.get(service), self.baseline.get(service)
        if now is None:
            return {}
        then = before.by(name, label, **match) if before else {}
        return {k: v - then.get(k, 0.0) for k, v in now.by(name, label, **match).items()}

    def gauge(self, service: str, name: str, **match: str) -> float | None:
        now = self.metrics.get(service)
        return None if now is None else now.total(name, **match)

    def record_lag(self, per_service: dict[str, int], elapsed_s: float | None) -> None:
        self.lag = per_service
        if elapsed_s is None:
            return  # before the traffic: the set-up's own records are not the live view's lag
        self.lag_readings += 1
        for service, lag in per_service.items():
            if lag >= self.max_lag.get(service, 0):
                self.max_lag[service] = lag
                self.max_lag_at_s[service] = round(elapsed_s, 1)

    def record_behind(self, traffic: Counter[str], during_run: bool) -> None:
        """Events acknowledged by Kafka that ads and creator-score have not counted yet."""
        pairs = {
            "ads": (
                traffic["impressions"] + traffic["bot_impressions"],
                self.delta("ads", "shopstream_ads_impressions_total"),
            ),
            "creator-score": (
                traffic["content_stats"] + traffic["profiles"],
                sum(
                    self.delta("creator-score", INPUTS, source=source) or 0.0
                    for source in ("content", "profiles")
                )
                if self.metrics.get("creator-score") is not None
                else None,
            ),
        }
        for service, (sent, counted) in pairs.items():
            if counted is None:
                continue
            self.behind[service] = max(0, sent - round(counted))
            if during_run:
                self.max_behind[service] = max(
                    self.max_behind.get(service, 0), self.behind[service]
                )

    def lag_summary(self) -> dict[str, Any]:
        return {
            "max": dict(self.max_lag),
            "max_at_s": dict(self.max_lag_at_s),
            "last": dict(self.lag),
            "last_by_group": dict(sorted(self.lag_groups.items())),
            "readings": self.lag_readings,
            "events_behind_max": dict(self.max_behind),
            "events_behind_last": dict(self.behind),
        }

    def observed(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for service, name, label, key in OBSERVED:
            if self.metrics.get(service) is None:
                continue
            if label:
                for value, d in sorted(self.delta_by(service, name, label).items()):
                    out[f"{key}.{value}"] = d
            else:
                out[key] = self.delta(service, name) or 0.0
        return out


@dataclass
class Telemetry:
    """The run as the view sees it; written by the engine and the monitor, read by the view."""

    config: SimConfig
    ledger: Ledger
    phase: str = "connecting"
    stage: str = ""
    done: int = 0
    total: int = 0
    run_id: str = ""
    services: dict[str, str] = field(default_factory=dict)
    snapshot: Snapshot = field(default_factory=Snapshot)
    context: Context | None = None
    journeys: int = 0
    expected_orders: float = 0.0
    # What verify found, once the run is over, and the ledger beside the services' counters.
    verdicts: dict[str, Any] = field(default_factory=dict)
    reconciled: dict[str, Any] = field(default_factory=dict)

    def progress(self, stage: str, done: int, total: int) -> None:
        self.stage, self.done, self.total = stage, done, total


def _row(c: creators_pb2.Creator, mine: bool, category: str | None = None) -> CreatorRow:
    strength = next((s for s in c.category_strengths if s.category_id == category), None)
    return CreatorRow(
        creator_id=c.creator_id,
        name=c.display_name,
        score=c.score,
        tier=c.tier,
        authenticity=c.components.authenticity,
        flags=tuple(c.flags),
        followers=c.followers,
        gmv_minor=c.gmv.amount_minor,
        mine=mine,
        standing=strength.score if strength is not None else None,
        rank=int(strength.rank) if strength is not None else None,
    )


class Monitor:
    def __init__(
        self, config: SimConfig, services: Services, codec: TokenCodec, telemetry: Telemetry
    ) -> None:
        self._config = config
        self._services = services
        self._telemetry = telemetry
        # Its own client and ledger: the dashboard's reads are not part of the simulated world.
        self._rpc = Rpc(codec, Ledger(), concurrency=8, timeout_s=2.0, attempts=1)
        self._tick = 0
        self._lag = LagReader(config.kafka)

    async def scrape_all(self) -> dict[str, Samples | None]:
        names = list(self._config.targets.metrics)
        found = await asyncio.gather(*(scrape(self._config.targets.metrics[n]) for n in names))
        return dict(zip(names, found, strict=True))

    async def baseline(self) -> None:
        snapshot = self._telemetry.snapshot
        snapshot.baseline = await self.scrape_all()
        snapshot.metrics = dict(snapshot.baseline)

    async def refresh(self) -> None:
        snapshot = self._telemetry.snapshot
        snapshot.metrics = await self.scrape_all()
        ctx = self._telemetry.context
        await self.read_lag()
        if ctx is not None:
            await asyncio.gather(self._creators(ctx), self._campaigns(ctx))
        snapshot.refreshed_at = time.monotonic()
        self._tick += 1

    async def read_lag(self) -> None:
        snapshot = self._telemetry.snapshot
        ctx = self._telemetry.context
        # Each service's name in this stack (its groups' prefix), from its build_info.
        names = {
            service: next(iter(samples.by("shopstream_build_info", "service")), service)
            for service, samples in snapshot.metrics.items()
            if samples is not None
        }
        try:
            reading = await asyncio.to_thread(self._lag.read, names)
        except Exception as exc:  # Kafka away for a moment: keep the last reading
            self._telemetry.ledger.warn(f"consumer lag not read: {exc!r}")
            return
        traffic = ctx is not None and ctx.traffic_started is not None
        snapshot.lag_groups = reading.per_group
        snapshot.record_lag(reading.per_service, ctx.elapsed() if traffic and ctx else None)
        snapshot.record_behind(self._telemetry.ledger.traffic, traffic)

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # the view must survive any one bad refresh
                self._telemetry.ledger.warn(f"dashboard refresh failed: {exc!r}")
            await asyncio.sleep(self._config.refresh_s)

    async def _creators(self, ctx: Context) -> None:
        if not self._services.serving("creator-score"):
            return
        mine = {c.creator_id for c in ctx.world.creators}
        stub = self._services.creators

        async def top(category: str) -> tuple[str, list[CreatorRow]]:
            try:
                answer = await self._rpc(
                    stub.TopCreators,
                    cs.TopCreatorsRequest(category_id=category, limit=TOP_PER_CATEGORY),
                    as_=ADMIN,
                )
            except aio.AioRpcError:
                return category, []
            return category, [_row(c, c.creator_id in mine, category) for c in answer.creators]

        async def one(creator_id: str) -> CreatorRow | None:
            try:
                answer = await self._rpc(
                    stub.GetCreator, cs.GetCreatorRequest(creator_id=creator_id), as_=ADMIN
                )
            except aio.AioRpcError:
                return None
            return _row(answer.creator, True)

        tops = await asyncio.gather(*(top(c.category_id) for c in ctx.world.categories))
        self._telemetry.snapshot.top = dict(tops)
        fakes = await asyncio.gather(*(one(c.creator_id) for c in ctx.world.fake_creators))
        self._telemetry.snapshot.fakes = [f for f in fakes if f is not None]

    async def _campaigns(self, ctx: Context) -> None:
        # Reports cost the ads service more than a scrape: every other refresh is enough.
        if not ctx.ads_ok or self._tick % 2:
            return

        async def report(campaign_id: str) -> CampaignRow | None:
            try:
                answer = await self._rpc(
                    self._services.ads.GetCampaignReport,
                    ads_service_pb2.GetCampaignReportRequest(campaign_id=campaign_id),
                    as_=AUDIT,
                )
            except aio.AioRpcError:
                return None
            t = answer.total
            suppressed = t.conversions_suppressed
            return CampaignRow(
                campaign_id=campaign_id,
                name=ctx.campaigns[campaign_id].name,
                impressions=t.impressions,
                clicks=t.clicks,
                spend_minor=t.spend.amount_minor,
                gmv_minor=None if suppressed else t.attributed_gmv.amount_minor,
                roas=t.roas if t.HasField("roas") else None,
                orders=t.attributed_orders if t.HasField("attributed_orders") else None,
            )

        rows = await asyncio.gather(*(report(c) for c in list(ctx.campaigns)))
        self._telemetry.snapshot.campaigns = sorted(
            (r for r in rows if r is not None), key=lambda r: -r.spend_minor
        )
