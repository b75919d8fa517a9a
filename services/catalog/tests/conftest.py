"""Fixtures: a real catalog service (in this event loop, real gRPC port, real Kafka, SQLite or
PostgreSQL) and gRPC stubs with tokens for the roles the tests play."""

from __future__ import annotations

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
from shopstream_platform.settings import KafkaSettings
from shopstream_platform.testing import fast_test_settings, hosted_service


@pytest.fixture
def catalog_overrides() -> dict[str, Any]:
    """Settings a test module may override (e.g. listing rules)."""
    return {}


@pytest.fixture
async def catalog(
    database: Database, kafka_settings: KafkaSettings, catalog_overrides: dict[str, Any]
) -> AsyncIterator[RunningCatalog]:
    settings = CatalogSettings(
        database_url=database.url.render_as_string(hide_password=False),
        **{**fast_test_settings(kafka_settings), **catalog_overrides},
    )
    async with hosted_service(settings, wire, policy=POLICY, migrations=MIGRATIONS) as hosted:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{hosted.port}") as channel:
            yield RunningCatalog(
                hosted.runtime,
                hosted.wired,
                channel,
                catalog_service_pb2_grpc.CatalogServiceStub(channel),
                TokenCodec(settings.auth),
            )


@pytest.fixture
def ids() -> Callable[[str], str]:
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:8]}"
