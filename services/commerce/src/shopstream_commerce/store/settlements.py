"""Queries over the sellers' ledger (caller's session); insert-only, one entry per cause key."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream_commerce.domain.settlements import EntryKind, SellerEntry
from shopstream_commerce.store.repository import append_once
from shopstream_commerce.store.tables import seller_ledger


def _entry(r: Any) -> SellerEntry:
    return SellerEntry(
        r.entry_id,
        r.seller_id,
        r.order_id,
        EntryKind(r.kind),
        r.account,
        r.amount_minor,
        r.currency,
        r.refund_id,
        r.created_at,
    )


async def insert(session: AsyncSession, entry: SellerEntry, dedup_key: str) -> bool:
    """Append an entry once per cause; False when this cause was already recorded."""
    return await append_once(
        session,
        seller_ledger,
        entry_id=entry.entry_id,
        seller_id=entry.seller_id,
        order_id=entry.order_id,
        kind=int(entry.kind),
        account=entry.account,
        amount_minor=entry.amount_minor,
        currency=entry.currency,
        refund_id=entry.refund_id,
        created_at=entry.created_at,
        dedup_key=dedup_key,
    )


async def of_order(session: AsyncSession, order_id: str) -> list[SellerEntry]:
    rows = (
        await session.execute(
            select(seller_ledger)
            .where(seller_ledger.c.order_id == order_id)
            .order_by(seller_ledger.c.entry_id)
        )
    ).all()
    return [_entry(r) for r in rows]


async def page(session: AsyncSession, seller_id: str, after: str, limit: int) -> list[SellerEntry]:
    conditions = [seller_ledger.c.seller_id == seller_id]
    if after:
        conditions.append(seller_ledger.c.entry_id < after)
    rows = (
        await session.execute(
            select(seller_ledger)
            .where(and_(*conditions))
            .order_by(seller_ledger.c.entry_id.desc())
            .limit(limit)
        )
    ).all()
    return [_entry(r) for r in rows]


async def balances(session: AsyncSession, seller_id: str) -> dict[tuple[int, str], int]:
    """Sum of entries per (account, currency)."""
    rows = (
        await session.execute(
            select(
                seller_ledger.c.account,
                seller_ledger.c.currency,
                func.sum(seller_ledger.c.amount_minor),
            )
            .where(seller_ledger.c.seller_id == seller_id)
            .group_by(seller_ledger.c.account, seller_ledger.c.currency)
        )
    ).all()
    return {(account, currency): int(total) for account, currency, total in rows}
