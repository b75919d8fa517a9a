"""Fixtures: ads running in this event loop (Faust memory tables, real Kafka, SQLite)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from ads_steps import AdsWorld, running_ads

from shopstream_ads.settings import AttributionSettings, PrivacySettings
from shopstream_platform.settings import KafkaSettings


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
    """The service's attribution rules; a test module overrides the fixture to change them.
    The join grace is 10 s, not 2: integration tests run four at a time on two cores, where a
    click's extra hop through screening can take seconds, and an order or click released by
    the grace before its partner joins is decided another (also correct) way."""
    return AttributionSettings(join_grace_s=10.0)


@pytest.fixture
async def ads(
    kafka_settings: KafkaSettings,
    tmp_path: Path,
    privacy: PrivacySettings,
    attribution: AttributionSettings,
) -> AsyncIterator[AdsWorld]:
    async with running_ads(
        kafka_settings, tmp_path, privacy=privacy, attribution=attribution
    ) as world:
        yield world


@pytest.fixture
def ids() -> Callable[[str], str]:
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:8]}"
