"""Fixtures: catalog and commerce running in this event loop on the real broker; commerce on
SQLite or PostgreSQL (catalog on SQLite)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from commerce_steps import Shop, own_catalog_name, own_commerce_name

from shopstream.catalog.v1 import catalog_service_pb2_grpc
from shopstream.commerce.v1 import commerce_service_pb2_grpc
from shopstream_catalog.api.policy import POLICY as CATALOG_POLICY
from shopstream_catalog.settings import CatalogSettings
from shopstream_catalog.store.tables import MIGRATIONS as CATALOG_MIGRATIONS
from shopstream_catalog.wiring import wire as wire_catalog
from shopstream_commerce.api.policy import POLICY
from shopstream_commerce.settings import CommerceSettings
from shopstream_commerce.store.tables import MIGRATIONS
from shopstream_commerce.wiring import wire
from shopstream_platform.db.database import Database
from shopstream_platform.grpc.auth import TokenCodec
from shopstream_platform.settings import KafkaSettings
from shopstream_platform.testing import HostedService, fast_test_settings, hosted_service


@pytest.fixture
def commerce_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def catalog_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def catalog(kafka_settings: KafkaSettings, tmp_path: Path) -> AsyncIterator[HostedService]:
    """Catalog alone, in this process; for tests that run commerce as a process they kill."""
    settings = CatalogSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/catalog.db",
        service_name=own_catalog_name(kafka_settings),
        **fast_test_settings(kafka_settings),
    )
    async with hosted_service(
        settings, wire_catalog, policy=CATALOG_POLICY, migrations=CATALOG_MIGRATIONS
    ) as hosted:
        yield hosted


@pytest.fixture
async def shop(
    database: Database,
    kafka_settings: KafkaSettings,
    tmp_path: Path,
    commerce_overrides: dict[str, Any],
    catalog_overrides: dict[str, Any],
) -> AsyncIterator[Shop]:
    fast = fast_test_settings(kafka_settings)
    catalog_name = own_catalog_name(kafka_settings)
    catalog_settings = CatalogSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/catalog.db",
        **{"service_name": catalog_name, **fast, **catalog_overrides},
    )
    commerce_settings = CommerceSettings(
        database_url=database.url.render_as_string(hide_password=False),
        # Other catalogs on the shared broker answer our orders too (UNKNOWN_SKU): only ours counts.
        # Consumer groups of this test's own: another commerce on the shared broker (another
        # test run, a local stack) would otherwise share them and take partitions we wait on.
        **{
            **fast,
            "service_name": own_commerce_name(kafka_settings),
            "sweep_interval_s": 0.2,
            "catalog_source": f"shopstream/{catalog_name}",
            **commerce_overrides,
        },
    )
    async with (
        hosted_service(
            catalog_settings, wire_catalog, policy=CATALOG_POLICY, migrations=CATALOG_MIGRATIONS
        ) as catalog,
        hosted_service(commerce_settings, wire, policy=POLICY, migrations=MIGRATIONS) as commerce,
        grpc.aio.insecure_channel(f"127.0.0.1:{catalog.port}") as catalog_channel,
        grpc.aio.insecure_channel(f"127.0.0.1:{commerce.port}") as commerce_channel,
    ):
        yield Shop(
            catalog,
            commerce,
            catalog_service_pb2_grpc.CatalogServiceStub(catalog_channel),
            commerce_service_pb2_grpc.CommerceServiceStub(commerce_channel),
            TokenCodec(commerce_settings.auth),
        )


@pytest.fixture
def ids() -> Callable[[str], str]:
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:8]}"
