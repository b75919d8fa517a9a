"""Fixtures: creator-score running in this event loop (Faust memory tables, real Kafka)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from creator_steps import Market, running_market

from shopstream_platform.settings import KafkaSettings


@pytest.fixture
async def market(kafka_settings: KafkaSettings, tmp_path: Path) -> AsyncIterator[Market]:
    async with running_market(kafka_settings, tmp_path) as market:
        yield market


@pytest.fixture
def ids() -> Callable[[str], str]:
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:8]}"
