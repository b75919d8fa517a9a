"""Queries and updates over the ads tables; every function runs in the caller's session."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream_ads.domain.campaigns import (
    AttributionChoice,
    BidType,
    Campaign,
    ClickWindow,
    ViewWindow,
)
from shopstream_ads.store.tables import campaigns, privacy_spend
from shopstream_platform.db.database import rowcount


def _row(c: Campaign, request_id: str) -> dict[str, Any]:
    return {
        "campaign_id": c.campaign_id,
        "advertiser_id": c.advertiser_id,
        "name": c.name,
        "promoted_product_ids": json.dumps(list(c.promoted_product_ids)),
        "promoted_creator_ids": json.dumps(list(c.promoted_creator_ids)),
        "placements": json.dumps(list(c.placements)),
        "bid_type": int(c.bid_type),
        "bid_minor": c.bid_minor,
        "currency": c.currency,
        "daily_budget_minor": c.daily_budget_minor,
        "total_budget_minor": c.total_budget_minor,
        "starts_at": c.starts_at,
        "ends_at": c.ends_at,
        "paused": c.paused,
        "request_id": request_id,
        "attribution": json.dumps(
            [
                int(c.attribution.click_window),
                int(c.attribution.view_window),
                c.attribution.engaged_view_ms,
            ]
        ),
        "created_at": c.created_at,
        "updated_at": c.updated_at,
    }


def _campaign(r: Any) -> Campaign:
    return Campaign(
        campaign_id=r.campaign_id,
        advertiser_id=r.advertiser_id,
        name=r.name,
        promoted_product_ids=tuple(json.loads(r.promoted_product_ids)),
        promoted_creator_ids=tuple(json.loads(r.promoted_creator_ids)),
        bid_type=BidType(r.bid_type),
        bid_minor=r.bid_minor,
        currency=r.currency,
        daily_budget_minor=r.daily_budget_minor,
        total_budget_minor=r.total_budget_minor,
        starts_at=r.starts_at,
        ends_at=r.ends_at,
        placements=tuple(json.loads(r.placements)),
        paused=r.paused,
        created_at=r.created_at,
        updated_at=r.updated_at,
        attribution=_attribution(r.attribution),
    )


def _attribution(stored: str | None) -> AttributionChoice:
    if not stored:
        return AttributionChoice()  # a campaign created before the choice existed
    click, view, engaged_ms = json.loads(stored)
    return AttributionChoice(ClickWindow(click), ViewWindow(view), engaged_ms)


async def insert_campaign(session: AsyncSession, c: Campaign, request_id: str) -> bool:
    """False when the advertiser already used this request id."""
    try:
        async with session.begin_nested():
            await session.execute(campaigns.insert().values(**_row(c, request_id)))
    except IntegrityError:
        return False
    return True


async def campaign_by_request(
    session: AsyncSession, advertiser_id: str, request_id: str
) -> Campaign | None:
    row = (
        await session.execute(
            select(campaigns).where(
                campaigns.c.advertiser_id == advertiser_id, campaigns.c.request_id == request_id
            )
        )
    ).first()
    return _campaign(row) if row is not None else None


async def get_campaign(session: AsyncSession, campaign_id: str) -> Campaign | None:
    row = (
        await session.execute(select(campaigns).where(campaigns.c.campaign_id == campaign_id))
    ).first()
    return _campaign(row) if row is not None else None


async def all_campaigns(session: AsyncSession) -> list[Campaign]:
    rows = await session.execute(select(campaigns).order_by(campaigns.c.campaign_id))
    return [_campaign(r) for r in rows]


async def list_campaigns(
    session: AsyncSession, advertiser_id: str, after: str, limit: int
) -> Sequence[Campaign]:
    query = select(campaigns).order_by(campaigns.c.campaign_id).limit(limit)
    if advertiser_id:
        query = query.where(campaigns.c.advertiser_id == advertiser_id)
    if after:
        query = query.where(campaigns.c.campaign_id > after)
    return [_campaign(r) for r in await session.execute(query)]


async def set_paused(session: AsyncSession, c: Campaign) -> None:
    await session.execute(
        update(campaigns)
        .where(campaigns.c.campaign_id == c.campaign_id)
        .values(paused=c.paused, updated_at=c.updated_at)
    )


async def spend_epsilon(
    session: AsyncSession, advertiser_id: str, day: str, epsilon: float, budget: float
) -> float | None:
    """Take epsilon from the advertiser's budget for the day; the remainder, or None (nothing
    taken) when the budget cannot cover it. Runs in a write transaction, so two concurrent
    queries cannot both spend the last of the budget."""
    where = (privacy_spend.c.advertiser_id == advertiser_id) & (privacy_spend.c.day == day)
    row = (await session.execute(select(privacy_spend.c.epsilon_spent).where(where))).first()
    spent = float(row.epsilon_spent) if row is not None else 0.0
    if spent + epsilon > budget + 1e-9:
        return None
    if row is None:
        try:
            async with session.begin_nested():
                await session.execute(
                    privacy_spend.insert().values(
                        advertiser_id=advertiser_id, day=day, epsilon_spent=epsilon, queries=1
                    )
                )
        except IntegrityError:
            return await spend_epsilon(session, advertiser_id, day, epsilon, budget)
    else:
        # Guarded by the value read: a concurrent spender makes this update miss, and we retry.
        result = await session.execute(
            update(privacy_spend)
            .where(where & (privacy_spend.c.epsilon_spent == row.epsilon_spent))
            .values(
                epsilon_spent=privacy_spend.c.epsilon_spent + epsilon,
                queries=privacy_spend.c.queries + 1,
            )
        )
        if rowcount(result) == 0:
            return await spend_epsilon(session, advertiser_id, day, epsilon, budget)
    return budget - spent - epsilon


async def epsilon_spent(session: AsyncSession, advertiser_id: str, day: str) -> float:
    row = (
        await session.execute(
            select(privacy_spend.c.epsilon_spent).where(
                (privacy_spend.c.advertiser_id == advertiser_id) & (privacy_spend.c.day == day)
            )
        )
    ).first()
    return float(row.epsilon_spent) if row is not None else 0.0
