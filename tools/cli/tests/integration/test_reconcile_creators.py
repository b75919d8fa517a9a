"""`shopstream reconcile` of creator-score's exact inputs against a real creator-score (Faust
memory tables, the real broker): live sessions and ad credits published as commerce and ads
publish them; the recount of the creator's sessions and net ad-credited orders matches
GetCreator as the audit principal.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from creator_steps import Market, running_market

from shopstream_cli.reconcile import Scope, reconcile
from shopstream_platform.settings import KafkaSettings

pytestmark = pytest.mark.integration


@pytest.fixture
async def market(kafka_settings: KafkaSettings, tmp_path: Path) -> AsyncIterator[Market]:
    async with running_market(kafka_settings, tmp_path, "creator-score-reconcile") as market:
        yield market


async def test_a_creators_sessions_and_ad_credited_orders_recount(market: Market) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    prefix = f"rc{uuid.uuid4().hex[:8]}-cr-"
    creator = f"{prefix}0001"
    campaign = f"{prefix}campaign"
    await market.profile(creator, 1_000)
    await market.live(creator, f"{prefix}live-1", peak_viewers=10)
    await market.live(creator, f"{prefix}live-2", peak_viewers=20)
    await market.attribution([creator], f"{prefix}o1", 1_000, campaign=campaign)
    # A credit that moved to another touch: withdrawn, so one net ad-credited order.
    await market.attribution([creator], f"{prefix}o2", 2_000, campaign=campaign)
    await market.attribution([creator], f"{prefix}o2", 2_000, campaign=campaign, withdrawn=True)

    async def counted() -> None:
        c = (await market.creator(creator)).creator
        assert (c.live.sessions, c.ad_sales.orders) == (2, 1)

    await market.eventually(counted)
    settings = market.service.runtime.settings
    address = {"creator-score": f"127.0.0.1:{market.service.port}"}
    report = await asyncio.to_thread(
        reconcile, settings.kafka, settings.auth, address, Scope(since=since, creators=(prefix,))
    )
    assert report.mismatches == [], [m.to_dict() for m in report.mismatches]
    assert {c.name: c.compared for c in report.checks}["creators.inputs"] == 2
