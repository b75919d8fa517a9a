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
from shopstream_platform.testing import fast_test_settings, hosted_service, start_groups_at_end


@pytest.fixture
def catalog_overrides() -> dict[str, Any]:
    """Settings a test module may override (e.g. listing rules)."""
    return {}


@pytest.fixture
async def catalog(
    database: Database, kafka_settings: KafkaSettings, catalog_overrides: dict[str, Any]
) -> AsyncIterator[RunningCatalog]:
    # A service name (so a consumer group and a CloudEvents source) of this test's own, its
    # group starting at the orders topic's end: on a shared broker other catalogs (other test
    # runs, a local stack) would otherwise share `catalog.orders` and take our orders.
    name = f"catalog-{uuid.uuid4().hex[:8]}"
    start_groups_at_end(
        kafka_settings,
        {
            f"{name}.orders": ["commerce.orders.v1"],
            f"{name}.fulfilment": ["commerce.fulfilment.v1"],
        },
    )
    settings = CatalogSettings(
        database_url=database.url.render_as_string(hide_password=False),
        **{"service_name": name, **fast_test_settings(kafka_settings), **catalog_overrides},
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
