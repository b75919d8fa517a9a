"""Fixtures: ads running in this event loop (Faust memory tables, real Kafka, SQLite)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from ads_steps import AdsWorld

from shopstream.ads.v1 import ads_service_pb2_grpc
from shopstream_ads.api.policy import POLICY
from shopstream_ads.settings import AdsSettings, AttributionSettings, PrivacySettings
from shopstream_ads.store.tables import MIGRATIONS
from shopstream_ads.stream.topics import TOPICS
from shopstream_ads.usecases import conversions, invalid_traffic
from shopstream_ads.wiring import conversions_group, invalid_traffic_group, wire
from shopstream_platform.grpc.auth import TokenCodec
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.settings import KafkaSettings
from shopstream_platform.testing import fast_test_settings, hosted_service, start_group_at_end


def ads_settings(kafka: KafkaSettings, tmp_path: Path, **overrides: Any) -> AdsSettings:
    return AdsSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/ads.db",
        store="memory",
        data_dir=tmp_path / "faust",
        # A fresh Faust app (and consumer groups) per test: each test reads only its own events.
        faust_app_id=f"ads-test-{uuid.uuid4().hex[:8]}",
        **{**fast_test_settings(kafka), **overrides},
    )


@pytest.fixture
def privacy() -> PrivacySettings:
    return PrivacySettings(
        k_threshold=3,
        epsilon_per_cell=1.0,
        epsilon_epoch_budget=2.0,
        epsilon_lifetime_budget=100.0,
        gmv_clip_minor=10_000,
    )


@pytest.fixture
def attribution() -> AttributionSettings:
    """The service's attribution rules; a test module overrides the fixture to change them."""
    return AttributionSettings()


@pytest.fixture
async def ads(
    kafka_settings: KafkaSettings,
    tmp_path: Path,
    privacy: PrivacySettings,
    attribution: AttributionSettings,
) -> AsyncIterator[AdsWorld]:
    settings = ads_settings(kafka_settings, tmp_path, privacy=privacy, attribution=attribution)
    # Topics outlive tests: the new worker group starts at their current end, not their history.
    start_group_at_end(kafka_settings, settings.faust_app_id, TOPICS)
    start_group_at_end(
        kafka_settings, f"ads.{conversions_group(settings)}", [conversions.ATTRIBUTIONS_TOPIC]
    )
    start_group_at_end(
        kafka_settings,
        f"ads.{invalid_traffic_group(settings)}",
        [invalid_traffic.INVALID_TOPIC],
    )
    producer = EventProducer(kafka_settings, "shopstream/test-edge")
    async with (
        hosted_service(settings, wire, policy=POLICY, migrations=MIGRATIONS) as hosted,
        grpc.aio.insecure_channel(f"127.0.0.1:{hosted.port}") as channel,
    ):
        yield AdsWorld(
            hosted,
            ads_service_pb2_grpc.AdsServiceStub(channel),
            producer,
            TokenCodec(settings.auth),
            kafka_settings,
        )
    producer.close()


@pytest.fixture
def ids() -> Callable[[str], str]:
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:8]}"
