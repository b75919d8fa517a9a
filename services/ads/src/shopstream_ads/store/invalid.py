"""Invalid clicks per campaign, click day and reason; functions run in the caller's session."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream_ads.store.tables import invalid_clicks
from shopstream_platform.db.database import rowcount


async def add_flag(
    session: AsyncSession, campaign_id: str, day: str, reason: int, reversed_charge: bool
) -> None:
    """One flagged click. Flags are keyed by buyer, so two partitions may count the same campaign
    day at once: the second first insert fails inside its savepoint and updates instead."""
    where = (
        (invalid_clicks.c.campaign_id == campaign_id)
        & (invalid_clicks.c.day == day)
        & (invalid_clicks.c.reason == reason)
    )
    result = await session.execute(
        update(invalid_clicks)
        .where(where)
        .values(
            clicks=invalid_clicks.c.clicks + 1,
            reversed=invalid_clicks.c.reversed + int(reversed_charge),
        )
    )
    if rowcount(result) == 1:
        return
    try:
        async with session.begin_nested():
            await session.execute(
                invalid_clicks.insert().values(
                    campaign_id=campaign_id,
                    day=day,
                    reason=reason,
                    clicks=1,
                    reversed=int(reversed_charge),
                )
            )
    except IntegrityError:
        await add_flag(session, campaign_id, day, reason, reversed_charge)


async def by_day(
    session: AsyncSession, campaign_id: str, days: Iterable[str] | None = None
) -> dict[str, dict[int, tuple[int, int]]]:
    """day -> reason -> (clicks, reversed); all days when `days` is None."""
    query = select(invalid_clicks).where(invalid_clicks.c.campaign_id == campaign_id)
    if days is not None:
        query = query.where(invalid_clicks.c.day.in_(list(days)))
    out: dict[str, dict[int, tuple[int, int]]] = {}
    for r in await session.execute(query):
        out.setdefault(r.day, {})[r.reason] = (int(r.clicks), int(r.reversed))
    return out
