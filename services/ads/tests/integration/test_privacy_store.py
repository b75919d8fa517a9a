"""The privacy tables on SQLite and PostgreSQL: per-order rows, stored releases, guarded budgets."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError

from shopstream_ads.domain.privacy import Conversion, Released
from shopstream_ads.store import invalid
from shopstream_ads.store import privacy as store
from shopstream_ads.store.tables import MIGRATIONS
from shopstream_ads.usecases.invalid_traffic import InvalidClicks, summarise
from shopstream_platform.db.database import Database
from shopstream_platform.db.migrations import migrate

pytestmark = pytest.mark.integration
NOW = datetime(2026, 12, 6, tzinfo=UTC)


async def test_orders_releases_and_budgets(database: Database) -> None:
    assert await migrate(database, "ads", MIGRATIONS) == [1, 2, 3, 4]
    async with database.transaction() as s:
        kw = {"campaign_id": "c1", "advertiser_id": "a1", "day": "2026-12-01"}
        await store.add_attribution(s, order_id="o1", buyer_id="b1", credit=1, amount_minor=5, **kw)
        await store.add_attribution(
            s, order_id="o1", buyer_id="b1", credit=0, amount_minor=-2, **kw
        )
        await store.add_attribution(s, order_id="o2", buyer_id="b2", credit=1, amount_minor=9, **kw)
        await store.add_attribution(
            s, order_id="o2", buyer_id="b2", credit=-1, amount_minor=-9, **kw
        )
    async with database.read() as s:
        assert await store.credited(s, "c1", ["2026-12-01", "2026-12-02"]) == {
            "2026-12-01": [Conversion("b1", 3)],
            "2026-12-02": [],
        }
        assert await store.conversion_days(s, "c1") == ["2026-12-01"]

    cells = {"2026-12-01": (Released(7, 700), 1_000_000), "2026-12-02": (Released(None, None), 0)}
    async with database.transaction() as s:
        await store.record_releases(s, "c1", "a1", 42, cells, NOW)
    with pytest.raises(IntegrityError):  # a second release of the same cell and epoch
        async with database.transaction() as s:
            await store.record_releases(s, "c1", "a1", 42, dict(list(cells.items())[:1]), NOW)
    async with database.read() as s:
        assert await store.released(s, "c1", ["2026-12-01", "2026-12-02"], 42) == {
            d: c for d, (c, _) in cells.items()
        }
        assert await store.released(s, "c1", ["2026-12-01"], 43) == {}

    # Ten concurrent spenders of 1.0 against an epoch cap of 3.0: exactly three succeed.
    async def spend() -> bool:
        for _ in range(20):
            try:
                async with database.transaction() as s:
                    ok = await store.try_spend(
                        s, "a1", 42, 1_000_000, 1, epoch_cap=3_000_000, lifetime_cap=4_000_000
                    )
                    if not ok:
                        raise _Refused
                return True
            except _Refused:
                return False
            except IntegrityError:
                await asyncio.sleep(0.01)
        return False

    results = await asyncio.gather(*(spend() for _ in range(10)))
    assert sum(results) == 3
    async with database.read() as s:
        assert await store.budget_spent(s, "a1", 42) == (3_000_000, 3_000_000)
    # The next epoch has room, the lifetime cap (4.0) only for one more.
    assert await spend_in(database, 43) and not await spend_in(database, 43)
    async with database.read() as s:
        assert await store.budget_spent(s, "a1", 43) == (1_000_000, 4_000_000)


class _Refused(Exception):
    pass


async def spend_in(database: Database, epoch: int) -> bool:
    try:
        async with database.transaction() as s:
            if not await store.try_spend(
                s, "a1", epoch, 1_000_000, 1, epoch_cap=3_000_000, lifetime_cap=4_000_000
            ):
                raise _Refused
    except _Refused:
        return False
    return True


async def test_invalid_clicks_are_counted_per_day_and_reason_under_concurrency(
    database: Database,
) -> None:
    await migrate(database, "ads", MIGRATIONS)

    async def flag(reason: int, reversed_charge: bool) -> None:
        async with database.transaction() as s:
            await invalid.add_flag(s, "c1", "2026-12-01", reason, reversed_charge)

    await asyncio.gather(*(flag(1, i < 3) for i in range(8)), flag(3, False))
    async with database.read() as s:
        counted = await invalid.by_day(s, "c1")
    assert counted == {"2026-12-01": {1: (8, 3), 3: (1, 0)}}
    assert summarise(counted["2026-12-01"]) == InvalidClicks(givt=8, sivt=1, credited=3)
