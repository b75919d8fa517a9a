"""Per-order conversions, released cells and epoch budgets; every function runs in the caller's
session (and transaction)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream_ads.domain.privacy import Conversion, Released
from shopstream_ads.store.tables import conversions, privacy_budget, releases
from shopstream_platform.db.database import rowcount


async def add_attribution(
    session: AsyncSession,
    *,
    campaign_id: str,
    order_id: str,
    advertiser_id: str,
    day: str,
    buyer_id: str,
    credit: int,
    amount_minor: int,
) -> None:
    """A credit (+1), withdrawal (-1) or refund (0) of an order's credit to a campaign; the
    amount is signed (negative for refunds and withdrawals). One campaign's attributions come
    in order on one partition, so a row is never written concurrently."""
    where = (conversions.c.campaign_id == campaign_id) & (conversions.c.order_id == order_id)
    found = (await session.execute(select(conversions.c.credits).where(where))).first()
    if found is None:
        await session.execute(
            conversions.insert().values(
                campaign_id=campaign_id,
                order_id=order_id,
                advertiser_id=advertiser_id,
                day=day,
                buyer_id=buyer_id,
                credits=credit,
                net_minor=amount_minor,
            )
        )
    else:
        await session.execute(
            update(conversions)
            .where(where)
            .values(
                credits=conversions.c.credits + credit,
                net_minor=conversions.c.net_minor + amount_minor,
            )
        )


async def credited(
    session: AsyncSession, campaign_id: str, days: Iterable[str]
) -> dict[str, list[Conversion]]:
    """The orders credited to the campaign on each of the days (withdrawn ones left out)."""
    wanted = list(days)
    out: dict[str, list[Conversion]] = {d: [] for d in wanted}
    if not wanted:
        return out
    rows = await session.execute(
        select(conversions.c.day, conversions.c.buyer_id, conversions.c.net_minor).where(
            conversions.c.campaign_id == campaign_id,
            conversions.c.day.in_(wanted),
            conversions.c.credits > 0,
        )
    )
    for r in rows:
        out[r.day].append(Conversion(r.buyer_id, int(r.net_minor)))
    return out


async def conversion_days(session: AsyncSession, campaign_id: str) -> list[str]:
    rows = await session.execute(
        select(conversions.c.day).where(conversions.c.campaign_id == campaign_id).distinct()
    )
    return [r.day for r in rows]


async def released(
    session: AsyncSession, campaign_id: str, days: Iterable[str], epoch: int
) -> dict[str, Released]:
    wanted = list(days)
    if not wanted:
        return {}
    rows = await session.execute(
        select(releases.c.day, releases.c.conversions, releases.c.gmv_minor).where(
            releases.c.campaign_id == campaign_id,
            releases.c.epoch == epoch,
            releases.c.day.in_(wanted),
        )
    )
    return {r.day: Released(r.conversions, r.gmv_minor) for r in rows}


async def record_releases(
    session: AsyncSession,
    campaign_id: str,
    advertiser_id: str,
    epoch: int,
    cells: dict[str, tuple[Released, int]],
    at: datetime,
) -> None:
    """Store newly released cells (cell, micro-epsilon it cost). A concurrent query that
    released the same cell first makes this fail with IntegrityError: the caller retries and
    reads that release instead."""
    if not cells:
        return
    await session.execute(
        releases.insert(),
        [
            {
                "campaign_id": campaign_id,
                "day": day,
                "epoch": epoch,
                "advertiser_id": advertiser_id,
                "conversions": cell.conversions,
                "gmv_minor": cell.gmv_minor,
                "micro_epsilon": cost,
                "released_at": at,
            }
            for day, (cell, cost) in cells.items()
        ],
    )


# The row under this epoch number holds the advertiser's lifetime spend.
LIFETIME = -1


async def budget_spent(session: AsyncSession, advertiser_id: str, epoch: int) -> tuple[int, int]:
    """Micro-epsilon spent in the epoch, and over the advertiser's life."""
    rows = await session.execute(
        select(privacy_budget.c.epoch, privacy_budget.c.micro_epsilon).where(
            privacy_budget.c.advertiser_id == advertiser_id,
            privacy_budget.c.epoch.in_([epoch, LIFETIME]),
        )
    )
    spent = {r.epoch: int(r.micro_epsilon) for r in rows}
    return spent.get(epoch, 0), spent.get(LIFETIME, 0)


async def try_spend(
    session: AsyncSession,
    advertiser_id: str,
    epoch: int,
    micro_epsilon: int,
    cells: int,
    *,
    epoch_cap: int,
    lifetime_cap: int,
) -> bool:
    """Take micro-epsilon from the epoch's and the lifetime budget; False when either cannot
    cover it (the caller then rolls the transaction back: one of the two may have been taken).
    Each update is guarded by its cap in SQL, so concurrent queries cannot overspend; two first
    spenders inserting the same row raise IntegrityError and the caller retries."""
    for key, cap in ((epoch, epoch_cap), (LIFETIME, lifetime_cap)):
        if micro_epsilon > cap:
            return False
        where = (privacy_budget.c.advertiser_id == advertiser_id) & (privacy_budget.c.epoch == key)
        result = await session.execute(
            update(privacy_budget)
            .where(where & (privacy_budget.c.micro_epsilon + micro_epsilon <= cap))
            .values(
                micro_epsilon=privacy_budget.c.micro_epsilon + micro_epsilon,
                cells=privacy_budget.c.cells + cells,
            )
        )
        if rowcount(result) == 1:
            continue
        if (await session.execute(select(privacy_budget.c.epoch).where(where))).first():
            return False
        await session.execute(
            privacy_budget.insert().values(
                advertiser_id=advertiser_id, epoch=key, micro_epsilon=micro_epsilon, cells=cells
            )
        )
    return True
