"""Health from outside: a combiner that cannot start is restarted, counted, and turns the
service NOT_SERVING on the standard gRPC health service (it would otherwise report SERVING while
no input reaches the scores)."""

import asyncio
import time
import uuid
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shopstream_creator_score.api.policy import POLICY
from shopstream_creator_score.settings import CreatorScoreSettings
from shopstream_creator_score.stream.topics import INPUT_TOPICS
from shopstream_creator_score.wiring import wire
from shopstream_platform.settings import CombinerSettings, KafkaSettings
from shopstream_platform.testing import fast_test_settings, hosted_service, start_group_at_end

pytestmark = pytest.mark.integration


async def test_a_crash_looping_combiner_turns_health_not_serving(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    settings = CreatorScoreSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/cs.db",
        store="memory",
        data_dir=tmp_path / "faust",
        faust_app_id=f"creator-score-test-{uuid.uuid4().hex[:8]}",
        # Above the broker's transaction.max.timeout.ms (15 min): the combiner's producer is
        # refused at init_transactions, so the process exits at every start.
        combiner=CombinerSettings(transaction_timeout_ms=3_600_000, restart_backoff_s=0.2),
        health_check_interval_s=0.5,
        **fast_test_settings(kafka_settings),
    )
    start_group_at_end(kafka_settings, settings.faust_app_id, INPUT_TOPICS)
    async with (
        hosted_service(settings, wire, policy=POLICY) as hosted,
        grpc.aio.insecure_channel(f"127.0.0.1:{hosted.port}") as channel,
    ):
        health = health_pb2_grpc.HealthStub(channel)
        status = None
        # Three exits within a minute; each start imports the combiner anew, seconds apiece on
        # a loaded machine.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
            status = reply.status
            if status == health_pb2.HealthCheckResponse.NOT_SERVING:
                break
            await asyncio.sleep(0.25)
        assert status == health_pb2.HealthCheckResponse.NOT_SERVING
        labels = {"service": settings.service_name, "child": "combiner"}
        assert hosted.metric("shopstream_child_restarts_total", labels) >= 3
        assert (
            hosted.metric(
                "shopstream_unhealthy", {"service": settings.service_name, "check": "combiner"}
            )
            == 1
        )
