"""Queries and updates over the catalog tables; every function runs in the caller's session."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream_catalog.domain.model import (
    ListingStatus,
    Money,
    ProductView,
    QualityStats,
    QualityTier,
    Reason,
    Seller,
    SkuView,
    StockView,
)
from shopstream_catalog.domain.reservation import Allocation, SkuStock
from shopstream_catalog.store.tables import (
    order_outcomes,
    products,
    reservation_orders,
    reservations,
    sellers,
    skus,
    stock,
)
from shopstream_platform.db.database import rowcount
from shopstream_platform.paging import decode_cursor, encode_cursor

# --- sellers --------------------------------------------------------------------------------


async def insert_seller(session: AsyncSession, seller: Seller) -> bool:
    """False when the id is taken."""
    try:
        async with session.begin_nested():
            await session.execute(
                sellers.insert().values(
                    seller_id=seller.seller_id,
                    display_name=seller.display_name,
                    country=seller.country,
                    quality_tier=int(seller.quality_tier),
                    registered_at=seller.registered_at,
                )
            )
    except IntegrityError:
        return False
    return True


async def get_seller(session: AsyncSession, seller_id: str) -> Seller | None:
    row = (await session.execute(select(sellers).where(sellers.c.seller_id == seller_id))).first()
    if row is None:
        return None
    return Seller(
        seller_id=row.seller_id,
        display_name=row.display_name,
        country=row.country,
        quality_tier=QualityTier(row.quality_tier),
        registered_at=row.registered_at,
    )


async def set_seller_tier(session: AsyncSession, seller_id: str, tier: QualityTier) -> None:
    await session.execute(
        update(sellers).where(sellers.c.seller_id == seller_id).values(quality_tier=int(tier))
    )


async def count_products(session: AsyncSession, seller_id: str) -> int:
    query = select(func.count()).select_from(products).where(products.c.seller_id == seller_id)
    return int((await session.execute(query)).scalar_one())


async def count_suppressed(session: AsyncSession, seller_id: str) -> int:
    query = (
        select(func.count())
        .select_from(products)
        .where(
            products.c.seller_id == seller_id, products.c.status == int(ListingStatus.SUPPRESSED)
        )
    )
    return int((await session.execute(query)).scalar_one())


# --- products -------------------------------------------------------------------------------


def search_text(title: str, description: str, brand: str) -> str:
    return " ".join([title, description, brand]).lower()


async def product_by_idempotency_key(session: AsyncSession, seller_id: str, key: str) -> str | None:
    query = select(products.c.product_id).where(
        products.c.seller_id == seller_id, products.c.idempotency_key == key
    )
    return (await session.execute(query)).scalar_one_or_none()


async def insert_product(session: AsyncSession, view: ProductView, idempotency_key: str) -> None:
    await session.execute(
        products.insert().values(
            product_id=view.product_id,
            seller_id=view.seller_id,
            title=view.title,
            description=view.description,
            category_id=view.category_id,
            brand=view.brand,
            attributes=view.attributes,
            status=int(view.status),
            reasons=[[r.code, r.message] for r in view.reasons],
            currency=view.skus[0].price.currency,
            min_price_minor=min(s.price.amount_minor for s in view.skus),
            available=sum(s.available for s in view.skus),
            search_text=search_text(view.title, view.description, view.brand),
            idempotency_key=idempotency_key or None,
            created_at=view.created_at,
            updated_at=view.updated_at,
            version=view.version,
        )
    )
    for sku in view.skus:
        await session.execute(
            skus.insert().values(
                sku_id=sku.sku_id,
                product_id=view.product_id,
                sku_code=sku.sku_code,
                variant_attributes=sku.variant_attributes,
                price_minor=sku.price.amount_minor,
                currency=sku.price.currency,
            )
        )
        for level in sku.stock:
            await session.execute(
                stock.insert().values(
                    sku_id=sku.sku_id,
                    warehouse_id=level.warehouse_id,
                    on_hand=level.on_hand,
                    reserved=0,
                )
            )


async def update_product_row(session: AsyncSession, view: ProductView) -> None:
    """Write a product's listing fields and SKU prices (not stock) as in `view`."""
    await session.execute(
        update(products)
        .where(products.c.product_id == view.product_id)
        .values(
            title=view.title,
            description=view.description,
            brand=view.brand,
            attributes=view.attributes,
            status=int(view.status),
            reasons=[[r.code, r.message] for r in view.reasons],
            min_price_minor=min(s.price.amount_minor for s in view.skus),
            search_text=search_text(view.title, view.description, view.brand),
            updated_at=view.updated_at,
            version=view.version,
        )
    )
    for sku in view.skus:
        await session.execute(
            update(skus)
            .where(skus.c.sku_id == sku.sku_id)
            .values(price_minor=sku.price.amount_minor)
        )


async def set_status(
    session: AsyncSession,
    product_id: str,
    status: ListingStatus,
    reasons: list[Reason],
    now: datetime,
) -> None:
    await session.execute(
        update(products)
        .where(products.c.product_id == product_id)
        .values(
            status=int(status),
            reasons=[[r.code, r.message] for r in reasons],
            updated_at=now,
            version=products.c.version + 1,
        )
    )


async def load_products(
    session: AsyncSession, product_ids: Sequence[str]
) -> dict[str, ProductView]:
    """Products with their SKUs and stock, in three queries whatever the count."""
    if not product_ids:
        return {}
    rows = (
        await session.execute(select(products).where(products.c.product_id.in_(product_ids)))
    ).all()
    if not rows:
        return {}
    sku_rows = (
        await session.execute(
            select(skus)
            .where(skus.c.product_id.in_([r.product_id for r in rows]))
            .order_by(skus.c.sku_code)
        )
    ).all()
    stock_rows = (
        await session.execute(
            select(stock)
            .where(stock.c.sku_id.in_([s.sku_id for s in sku_rows]))
            .order_by(stock.c.warehouse_id)
        )
    ).all()
    levels: dict[str, list[StockView]] = defaultdict(list)
    for level in stock_rows:
        levels[level.sku_id].append(StockView(level.warehouse_id, level.on_hand, level.reserved))
    by_product: dict[str, list[SkuView]] = defaultdict(list)
    for s in sku_rows:
        by_product[s.product_id].append(
            SkuView(
                sku_id=s.sku_id,
                sku_code=s.sku_code,
                variant_attributes=dict(s.variant_attributes),
                price=Money(s.price_minor, s.currency),
                stock=levels.get(s.sku_id, []),
            )
        )
    return {r.product_id: _product_view(r, by_product[r.product_id]) for r in rows}


def _product_view(row: Any, sku_views: list[SkuView]) -> ProductView:
    return ProductView(
        product_id=row.product_id,
        seller_id=row.seller_id,
        title=row.title,
        description=row.description,
        category_id=row.category_id,
        brand=row.brand,
        attributes=dict(row.attributes),
        status=ListingStatus(row.status),
        reasons=[Reason(code, message) for code, message in row.reasons],
        created_at=row.created_at,
        updated_at=row.updated_at,
        version=row.version,
        skus=sku_views,
    )


async def category_prices(
    session: AsyncSession, category_id: str, currency: str, exclude_product: str | None = None
) -> list[int]:
    query = select(products.c.min_price_minor).where(
        products.c.category_id == category_id,
        products.c.currency == currency,
        products.c.status == int(ListingStatus.ACTIVE),
    )
    if exclude_product:
        query = query.where(products.c.product_id != exclude_product)
    return [int(p) for p in (await session.execute(query)).scalars()]


@dataclass(frozen=True)
class SearchQuery:
    text: str
    category_id: str
    seller_id: str
    min_price_minor: int
    max_price_minor: int
    currency: str
    in_stock_only: bool
    page_size: int
    page_token: str


async def search_products(session: AsyncSession, q: SearchQuery) -> tuple[list[str], str]:
    """Ids of ACTIVE products matching the query, newest first, and the next page token."""
    conditions = [products.c.status == int(ListingStatus.ACTIVE)]
    for word in q.text.lower().split():
        escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(products.c.search_text.like(f"%{escaped}%", escape="\\"))
    if q.category_id:
        conditions.append(products.c.category_id == q.category_id)
    if q.seller_id:
        conditions.append(products.c.seller_id == q.seller_id)
    if q.currency:
        conditions.append(products.c.currency == q.currency)
    if q.min_price_minor:
        conditions.append(products.c.min_price_minor >= q.min_price_minor)
    if q.max_price_minor:
        conditions.append(products.c.min_price_minor <= q.max_price_minor)
    if q.in_stock_only:
        conditions.append(products.c.available > 0)
    if q.page_token:
        conditions.append(products.c.product_id < decode_cursor(q.page_token))
    query = (
        select(products.c.product_id)
        .where(and_(*conditions))
        .order_by(products.c.product_id.desc())
        .limit(q.page_size + 1)
    )
    ids = list((await session.execute(query)).scalars())
    next_token = encode_cursor(ids[q.page_size - 1]) if len(ids) > q.page_size else ""
    return ids[: q.page_size], next_token


# --- stock ----------------------------------------------------------------------------------


async def sku_product(session: AsyncSession, sku_id: str) -> str | None:
    return (
        await session.execute(select(skus.c.product_id).where(skus.c.sku_id == sku_id))
    ).scalar_one_or_none()


async def refresh_available(session: AsyncSession, product_ids: Iterable[str]) -> None:
    """Recompute the denormalised units-available of products after their stock changed."""
    for product_id in set(product_ids):
        total = (
            select(func.coalesce(func.sum(stock.c.on_hand - stock.c.reserved), 0))
            .select_from(stock.join(skus, skus.c.sku_id == stock.c.sku_id))
            .where(skus.c.product_id == product_id)
            .scalar_subquery()
        )
        await session.execute(
            update(products).where(products.c.product_id == product_id).values(available=total)
        )


async def adjust_on_hand(
    session: AsyncSession, sku_id: str, warehouse_id: str, delta: int, *, max_on_hand: int
) -> StockView | None:
    """Add delta to on-hand, creating the warehouse row when needed. None if it would drop
    below reserved (or below zero) or rise above max_on_hand (checked in the same statement, so
    a concurrent adjustment cannot take it past the bound either)."""
    if delta > 0:
        existing = (
            await session.execute(
                select(stock.c.sku_id).where(
                    stock.c.sku_id == sku_id, stock.c.warehouse_id == warehouse_id
                )
            )
        ).first()
        if existing is None:
            await session.execute(
                stock.insert().values(
                    sku_id=sku_id, warehouse_id=warehouse_id, on_hand=0, reserved=0
                )
            )
    result = await session.execute(
        update(stock)
        .where(
            stock.c.sku_id == sku_id,
            stock.c.warehouse_id == warehouse_id,
            stock.c.on_hand + delta >= stock.c.reserved,
            stock.c.on_hand + delta <= max_on_hand,
        )
        .values(on_hand=stock.c.on_hand + delta)
        .returning(stock.c.on_hand, stock.c.reserved)
    )
    row = result.first()
    return StockView(warehouse_id, row.on_hand, row.reserved) if row else None


async def stock_for_skus(session: AsyncSession, sku_ids: Iterable[str]) -> dict[str, SkuStock]:
    ids = list(set(sku_ids))
    rows = (
        await session.execute(
            select(
                skus.c.sku_id,
                products.c.status,
                stock.c.warehouse_id,
                stock.c.on_hand,
                stock.c.reserved,
            )
            .select_from(
                skus.join(products, products.c.product_id == skus.c.product_id).outerjoin(
                    stock, stock.c.sku_id == skus.c.sku_id
                )
            )
            .where(skus.c.sku_id.in_(ids))
        )
    ).all()
    available: dict[str, dict[str, int]] = defaultdict(dict)
    statuses: dict[str, ListingStatus] = {}
    for row in rows:
        statuses[row.sku_id] = ListingStatus(row.status)
        if row.warehouse_id is not None:
            available[row.sku_id][row.warehouse_id] = int(row.on_hand - row.reserved)
    return {sku: SkuStock(status, available.get(sku, {})) for sku, status in statuses.items()}


async def reserve(session: AsyncSession, allocation: Allocation) -> bool:
    """Reserve one allocation if the units are still there; False when another order won them."""
    result = await session.execute(
        update(stock)
        .where(
            stock.c.sku_id == allocation.sku_id,
            stock.c.warehouse_id == allocation.warehouse_id,
            stock.c.on_hand - stock.c.reserved >= allocation.quantity,
        )
        .values(reserved=stock.c.reserved + allocation.quantity)
    )
    return rowcount(result) == 1


async def release_or_commit(session: AsyncSession, allocation: Allocation, *, commit: bool) -> None:
    values: dict[str, Any] = {"reserved": stock.c.reserved - allocation.quantity}
    if commit:
        values["on_hand"] = stock.c.on_hand - allocation.quantity
    await session.execute(
        update(stock)
        .where(stock.c.sku_id == allocation.sku_id, stock.c.warehouse_id == allocation.warehouse_id)
        .values(**values)
    )


async def stock_level(session: AsyncSession, sku_id: str, warehouse_id: str) -> StockView:
    row = (
        await session.execute(
            select(stock.c.on_hand, stock.c.reserved).where(
                stock.c.sku_id == sku_id, stock.c.warehouse_id == warehouse_id
            )
        )
    ).one()
    return StockView(warehouse_id, row.on_hand, row.reserved)


# --- reservation orders ---------------------------------------------------------------------


async def reservation_state(session: AsyncSession, order_id: str) -> str | None:
    query = select(reservation_orders.c.state).where(reservation_orders.c.order_id == order_id)
    return (await session.execute(query)).scalar_one_or_none()


async def set_reservation_state(
    session: AsyncSession, order_id: str, state: str, now: datetime
) -> None:
    updated = await session.execute(
        update(reservation_orders)
        .where(reservation_orders.c.order_id == order_id)
        .values(state=state, updated_at=now)
    )
    if rowcount(updated) == 0:
        await session.execute(
            reservation_orders.insert().values(order_id=order_id, state=state, updated_at=now)
        )


async def record_allocations(
    session: AsyncSession, order_id: str, allocations: list[Allocation]
) -> None:
    for a in allocations:
        await session.execute(
            reservations.insert().values(
                order_id=order_id,
                line_id=a.line_id,
                sku_id=a.sku_id,
                warehouse_id=a.warehouse_id,
                quantity=a.quantity,
            )
        )


async def shrink_allocation(session: AsyncSession, order_id: str, released: Allocation) -> None:
    """The order now holds `released.quantity` fewer units of this allocation (a partial
    release); an allocation with nothing left is removed."""
    row = (
        reservations.c.order_id == order_id,
        reservations.c.line_id == released.line_id,
        reservations.c.sku_id == released.sku_id,
        reservations.c.warehouse_id == released.warehouse_id,
    )
    await session.execute(
        update(reservations)
        .where(*row)
        .values(quantity=reservations.c.quantity - released.quantity)
    )
    await session.execute(delete(reservations).where(*row, reservations.c.quantity <= 0))


async def allocations_of(session: AsyncSession, order_id: str) -> list[Allocation]:
    rows = (
        await session.execute(select(reservations).where(reservations.c.order_id == order_id))
    ).all()
    return [Allocation(r.line_id, r.sku_id, r.warehouse_id, int(r.quantity)) for r in rows]


async def products_of_skus(session: AsyncSession, sku_ids: Iterable[str]) -> dict[str, str]:
    rows = (
        await session.execute(
            select(skus.c.sku_id, skus.c.product_id).where(skus.c.sku_id.in_(list(set(sku_ids))))
        )
    ).all()
    return {r.sku_id: r.product_id for r in rows}


# --- order outcomes (quality) ---------------------------------------------------------------


@dataclass(frozen=True)
class OutcomeLine:
    order_id: str
    line_id: str
    seller_id: str
    product_id: str
    quantity: int
    placed_at: datetime


async def record_placed(session: AsyncSession, lines: list[OutcomeLine]) -> None:
    for line in lines:
        exists = (
            await session.execute(
                select(order_outcomes.c.order_id).where(
                    order_outcomes.c.order_id == line.order_id,
                    order_outcomes.c.line_id == line.line_id,
                )
            )
        ).first()
        if exists is None:
            await session.execute(
                order_outcomes.insert().values(
                    order_id=line.order_id,
                    line_id=line.line_id,
                    seller_id=line.seller_id,
                    product_id=line.product_id,
                    quantity=line.quantity,
                    placed_at=line.placed_at,
                    cancelled=False,
                    shipped=False,
                    shipped_late=False,
                    refunded_quantity=0,
                )
            )


async def mark_outcome(
    session: AsyncSession, order_id: str, line_id: str | None = None, **values: Any
) -> None:
    query = update(order_outcomes).where(order_outcomes.c.order_id == order_id)
    if line_id is not None:
        query = query.where(order_outcomes.c.line_id == line_id)
    await session.execute(query.values(**values))


async def add_refunded(session: AsyncSession, order_id: str, line_id: str, quantity: int) -> None:
    await session.execute(
        update(order_outcomes)
        .where(order_outcomes.c.order_id == order_id, order_outcomes.c.line_id == line_id)
        .values(
            refunded_quantity=case(
                (
                    order_outcomes.c.refunded_quantity + quantity > order_outcomes.c.quantity,
                    order_outcomes.c.quantity,
                ),
                else_=order_outcomes.c.refunded_quantity + quantity,
            )
        )
    )


def _flag(condition: Any) -> Any:
    """1 where the (boolean) condition holds: portable across SQLite and PostgreSQL."""
    return case((condition, 1), else_=0)


async def seller_stats(session: AsyncSession, seller_id: str, since: datetime) -> QualityStats:
    o = order_outcomes.c
    per_order = (
        select(
            o.order_id,
            func.max(_flag(o.cancelled)).label("cancelled"),
            func.max(_flag(o.shipped)).label("shipped"),
            func.max(_flag(o.shipped_late)).label("late"),
            func.max(o.refunded_quantity).label("refunded"),
        )
        .where(o.seller_id == seller_id, o.placed_at >= since)
        .group_by(o.order_id)
        .subquery()
    )
    row = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(per_order.c.cancelled), 0),
                func.coalesce(func.sum(per_order.c.shipped), 0),
                func.coalesce(func.sum(per_order.c.late), 0),
                func.coalesce(func.sum(_flag(per_order.c.refunded > 0)), 0),
            ).select_from(per_order)
        )
    ).one()
    orders, cancelled, shipped, late, refunded = (int(v) for v in row)
    return QualityStats(
        orders=orders, refunded=refunded, cancelled=cancelled, shipped=shipped, shipped_late=late
    )


async def product_refund_counts(
    session: AsyncSession, product_id: str, since: datetime
) -> tuple[int, int]:
    """(orders, orders with a refund) containing the product within the window."""
    o = order_outcomes.c
    per_order = (
        select(o.order_id, func.max(o.refunded_quantity).label("refunded"))
        .where(o.product_id == product_id, o.placed_at >= since, o.cancelled.is_(False))
        .group_by(o.order_id)
        .subquery()
    )
    row = (
        await session.execute(
            select(
                func.count(), func.coalesce(func.sum(_flag(per_order.c.refunded > 0)), 0)
            ).select_from(per_order)
        )
    ).one()
    return int(row[0]), int(row[1])
