"""Fixtures: a real catalog service (in this event loop, real gRPC port, real Kafka, SQLite or
PostgreSQL) and gRPC stubs with tokens for the roles the tests play."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from catalog_steps import RunningCatalog

from shopstream.catalog.v1 import catalog_service_pb2_grpc
from shopstream_catalog.api.policy import POLICY
from shopstream_catalog.settings import CatalogSettings
from shopstream_catalog.store.tables import MIGRATIONS
from shopstream_catalog.wiring import wire
from shopstream_platform.db.database import Database
from shopstream_platform.grpc.auth import TokenCodec
from shopstream_platform.runtime import Runtime
from shopstream_platform.settings import ConsumerSettings, GrpcSettings, KafkaSettings


@pytest.fixture
def catalog_overrides() -> dict[str, Any]:
    """Settings a test module may override (e.g. listing rules)."""
    return {}


@pytest.fixture
async def catalog(
    database: Database, kafka_settings: KafkaSettings, catalog_overrides: dict[str, Any]
) -> AsyncIterator[RunningCatalog]:
    url = database.url.render_as_string(hide_password=False)
    settings = CatalogSettings(
        database_url=url,
        kafka=kafka_settings,
        grpc=GrpcSettings(port=0, shutdown_grace_s=1),
        consumer=ConsumerSettings(poll_timeout_s=0.05, auto_commit_interval_ms=200),
        metrics_port=0,
        outbox_poll_interval_s=0.02,
        **catalog_overrides,
    )
    runtime = Runtime(settings, policy=POLICY, migrations=MIGRATIONS)
    app = wire(runtime)
    task = asyncio.create_task(runtime.serve(handle_signals=False))
    ready = asyncio.create_task(runtime.ready.wait())
    await asyncio.wait([task, ready], timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # surface the start-up failure
    assert runtime.ready.is_set() and runtime.grpc is not None
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{runtime.grpc.port}")
    try:
        yield RunningCatalog(
            runtime,
            app,
            channel,
            catalog_service_pb2_grpc.CatalogServiceStub(channel),
            TokenCodec(settings.auth),
        )
    finally:
        await channel.close()
        runtime.stop()
        assert await asyncio.wait_for(task, 60) == 0


@pytest.fixture
def ids() -> Callable[[str], str]:
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:8]}"
