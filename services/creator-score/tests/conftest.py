"""Fixtures: creator-score running in this event loop (Faust memory tables, real Kafka)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import grpc
import pytest
from creator_steps import Market

from shopstream.creators.v1 import creator_score_service_pb2_grpc
from shopstream_creator_score.api.policy import POLICY
from shopstream_creator_score.settings import CreatorScoreSettings
from shopstream_creator_score.stream.topics import INPUT_TOPICS
from shopstream_creator_score.wiring import wire
from shopstream_platform.grpc.auth import TokenCodec
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.settings import KafkaSettings
from shopstream_platform.testing import fast_test_settings, hosted_service, start_group_at_end


@pytest.fixture
async def market(kafka_settings: KafkaSettings, tmp_path: Path) -> AsyncIterator[Market]:
    settings = CreatorScoreSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/cs.db",
        store="memory",
        data_dir=tmp_path / "faust",
        # A fresh Faust app (and consumer groups) per test: each test reads only its own events.
        faust_app_id=f"creator-score-test-{uuid.uuid4().hex[:8]}",
        publish_step=0.0,
        **fast_test_settings(kafka_settings),
    )
    # Topics outlive test runs: start past what earlier runs left there.
    start_group_at_end(kafka_settings, settings.faust_app_id, INPUT_TOPICS)
    producer = EventProducer(kafka_settings, "shopstream/test-social")
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
    producer.close()


@pytest.fixture
def ids() -> Callable[[str], str]:
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:8]}"
