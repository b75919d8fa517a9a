"""Flash sales and their claims (caller's session): units are claimed and given back only by
conditional updates, so concurrent orders never exceed the total or a buyer's limit."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream_commerce.domain.flash_sales import FlashSale
from shopstream_commerce.store.tables import flash_claims, flash_sales
from shopstream_platform.db.database import rowcount


def _sale(r: Any) -> FlashSale:
    return FlashSale(
        r.flash_sale_id,
        r.live_session_id,
        r.seller_id,
        r.product_id,
        r.sku_id,
        r.deal_price_minor,
        r.currency,
        r.total,
        r.sold,
        r.per_buyer,
        r.starts_at,
        r.ends_at,
    )


async def insert(session: AsyncSession, sale: FlashSale) -> None:
    await session.execute(
        flash_sales.insert().values(
            flash_sale_id=sale.flash_sale_id,
            live_session_id=sale.live_session_id,
            seller_id=sale.seller_id,
            product_id=sale.product_id,
            sku_id=sale.sku_id,
            deal_price_minor=sale.deal_price_minor,
            currency=sale.currency,
            total=sale.total,
            sold=0,
            per_buyer=sale.per_buyer,
            starts_at=sale.starts_at,
            ends_at=sale.ends_at,
        )
    )


async def load(session: AsyncSession, flash_sale_id: str) -> FlashSale | None:
    row = (
        await session.execute(
            select(flash_sales).where(flash_sales.c.flash_sale_id == flash_sale_id)
        )
    ).first()
    return None if row is None else _sale(row)


async def of_session_sku(
    session: AsyncSession, live_session_id: str, sku_id: str
) -> list[FlashSale]:
    rows = (
        await session.execute(
            select(flash_sales).where(
                flash_sales.c.live_session_id == live_session_id, flash_sales.c.sku_id == sku_id
            )
        )
    ).all()
    return [_sale(r) for r in rows]


async def claim_total(session: AsyncSession, flash_sale_id: str, units: int) -> bool:
    result = await session.execute(
        update(flash_sales)
        .where(
            flash_sales.c.flash_sale_id == flash_sale_id,
            flash_sales.c.sold + units <= flash_sales.c.total,
        )
        .values(sold=flash_sales.c.sold + units)
    )
    return rowcount(result) == 1


async def claim_for_buyer(
    session: AsyncSession, flash_sale_id: str, buyer_id: str, units: int, limit: int
) -> bool:
    """Add `units` to the buyer's claim if it stays within `limit`; False when it would not."""
    for _ in range(2):
        result = await session.execute(
            update(flash_claims)
            .where(
                flash_claims.c.flash_sale_id == flash_sale_id,
                flash_claims.c.buyer_id == buyer_id,
                flash_claims.c.units + units <= limit,
            )
            .values(units=flash_claims.c.units + units)
        )
        if rowcount(result) == 1:
            return True
        exists = (
            await session.execute(
                select(flash_claims.c.units).where(
                    flash_claims.c.flash_sale_id == flash_sale_id,
                    flash_claims.c.buyer_id == buyer_id,
                )
            )
        ).first()
        if exists is not None or units > limit:
            return False
        savepoint = await session.begin_nested()
        try:
            await session.execute(
                flash_claims.insert().values(
                    flash_sale_id=flash_sale_id, buyer_id=buyer_id, units=units
                )
            )
            await savepoint.commit()
            return True
        except IntegrityError:
            # The buyer's concurrent order inserted first: add to its row instead.
            await savepoint.rollback()
    return False


async def give_back(session: AsyncSession, flash_sale_id: str, buyer_id: str, units: int) -> None:
    await session.execute(
        update(flash_sales)
        .where(flash_sales.c.flash_sale_id == flash_sale_id, flash_sales.c.sold >= units)
        .values(sold=flash_sales.c.sold - units)
    )
    await session.execute(
        update(flash_claims)
        .where(
            flash_claims.c.flash_sale_id == flash_sale_id,
            flash_claims.c.buyer_id == buyer_id,
            flash_claims.c.units >= units,
        )
        .values(units=flash_claims.c.units - units)
    )
