"""Builds ads from the platform runtime: campaigns, auctions, reports, the attribution worker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from shopstream.ads.v1 import ads_events_pb2 as ev
from shopstream.ads.v1 import ads_service_pb2, ads_service_pb2_grpc
from shopstream_ads.api.servicer import AdsServicer
from shopstream_ads.domain.campaigns import Status, status_of
from shopstream_ads.metrics import AdsMetrics
from shopstream_ads.settings import AdsSettings
from shopstream_ads.stream.agents import AttributionStreams
from shopstream_ads.topics import TOPICS
from shopstream_ads.usecases import conversions, invalid_traffic
from shopstream_ads.usecases.auctions import Auctions
from shopstream_ads.usecases.campaign_book import CampaignBook
from shopstream_ads.usecases.campaigns import Campaigns
from shopstream_ads.usecases.new_campaigns import NewCampaigns
from shopstream_ads.usecases.reports import Reports
from shopstream_ads.usecases.traffic import Traffic
from shopstream_platform.child_process import free_local_port
from shopstream_platform.runtime import Runtime

GAUGE_INTERVAL_S = 5.0


def conversions_group(settings: AdsSettings) -> str:
    """The suffix of the conversions consumer group (`ads.<suffix>`)."""
    return f"{settings.faust_app_id}.conversions"


def invalid_traffic_group(settings: AdsSettings) -> str:
    return f"{settings.faust_app_id}.invalid-traffic"


@dataclass
class Ads:
    book: CampaignBook
    campaigns: Campaigns
    streams: AttributionStreams
    metrics: AdsMetrics


def wire(runtime: Runtime) -> Ads:
    settings = runtime.settings
    assert isinstance(settings, AdsSettings)
    metrics = AdsMetrics(runtime.metrics.registry)
    book = CampaignBook()
    campaigns = Campaigns(runtime.db, runtime.outbox, book, settings)
    streams = AttributionStreams(
        settings, runtime.producer, runtime.dead_letters, book, campaigns, metrics, runtime.metrics
    )
    runtime.declare_topics(TOPICS)
    # Per-order conversions for released report cells (usecases/conversions.py). The group
    # follows the worker's app id, so a fresh app id (a test) starts a fresh group.
    runtime.add_consumer(
        conversions_group(settings),
        [conversions.ATTRIBUTIONS_TOPIC],
        runtime.deduplicated(
            conversions_group(settings),
            {ev.Attribution: conversions.on_attribution(settings.faust_app_id)},
        ),
    )
    # Invalid clicks per campaign day for the reports' gross/net columns.
    runtime.add_consumer(
        invalid_traffic_group(settings),
        [invalid_traffic.INVALID_TOPIC],
        runtime.deduplicated(
            invalid_traffic_group(settings),
            {ev.InvalidTrafficFlagged: invalid_traffic.on_flagged(settings.faust_app_id)},
        ),
    )
    runtime.add_grpc_service(
        ads_service_pb2.DESCRIPTOR.services_by_name["AdsService"].full_name,
        ads_service_pb2_grpc.add_AdsServiceServicer_to_server,
        AdsServicer(
            campaigns,
            NewCampaigns(campaigns.create),
            Auctions(book, settings, metrics),
            Traffic(runtime.producer),
            Reports(runtime.db, book, campaigns, settings),
            book,
            settings,
        ),
    )

    async def gauges() -> None:
        now = datetime.now(UTC)
        counts = dict.fromkeys(Status, 0)
        for c in book.campaigns():
            counts[status_of(c, book.spend(c.campaign_id, now), now)] += 1
        for status, n in counts.items():
            metrics.campaigns.labels(status.name.lower()).set(n)

    runtime.add_task("faust", streams.run)
    if settings.combiner.mode == "process":
        # Its metrics reach Prometheus through the service's own /metrics (one target).
        settings.combiner.metrics_port = settings.combiner.metrics_port or free_local_port()
        runtime.add_child_process(
            "combiner",
            "shopstream_ads.stream.combiner",
            restart_backoff_s=settings.combiner.restart_backoff_s,
            metrics_port=settings.combiner.metrics_port,
        )
    runtime.add_periodic("gauges", gauges, every_s=GAUGE_INTERVAL_S)
    runtime.add_readiness_gate(campaigns.load)
    runtime.add_readiness_gate(streams.recovered)
    return Ads(book, campaigns, streams, metrics)
