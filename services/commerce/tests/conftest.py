"""Fixtures: catalog and commerce running in this event loop on the real broker; commerce on
SQLite or PostgreSQL (catalog on SQLite)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from commerce_steps import Shop, own_catalog_name, running_shop

from shopstream_catalog.api.policy import POLICY as CATALOG_POLICY
from shopstream_catalog.settings import CatalogSettings
from shopstream_catalog.store.tables import MIGRATIONS as CATALOG_MIGRATIONS
from shopstream_catalog.wiring import wire as wire_catalog
from shopstream_platform.db.database import Database
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
    async with running_shop(
        kafka_settings,
        tmp_path,
        commerce_db_url=database.url.render_as_string(hide_password=False),
        commerce_overrides=commerce_overrides,
        catalog_overrides=catalog_overrides,
    ) as shop:
        yield shop


@pytest.fixture
def ids() -> Callable[[str], str]:
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:8]}"
