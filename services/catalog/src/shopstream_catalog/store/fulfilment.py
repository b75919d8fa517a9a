"""Queries over warehouses, enrolments, inbound shipments, restocks and package outcomes; every
function runs in the caller's session."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream_catalog.domain.fulfilment import (
    InboundLine,
    InboundShipment,
    InboundState,
    Warehouse,
)
from shopstream_catalog.domain.reservation import Site
from shopstream_catalog.store.tables import (
    fbt_enrolments,
    inbound_lines,
    inbound_shipments,
    package_outcomes,
    products,
    restocks,
    skus,
    stock,
    storage_charges,
    warehouses,
)
from shopstream_platform.db.database import rowcount


def _warehouse(row: Any) -> Warehouse:
    return Warehouse(row.warehouse_id, row.display_name, row.region, row.platform, row.seller_id)


async def insert_warehouse(session: AsyncSession, w: Warehouse, now: datetime) -> bool:
    if await get_warehouse(session, w.warehouse_id) is not None:
        return False
    await session.execute(
        warehouses.insert().values(
            warehouse_id=w.warehouse_id,
            display_name=w.display_name,
            region=w.region,
            platform=w.platform,
            seller_id=w.seller_id,
            created_at=now,
        )
    )
    return True


async def get_warehouse(session: AsyncSession, warehouse_id: str) -> Warehouse | None:
    row = (
        await session.execute(select(warehouses).where(warehouses.c.warehouse_id == warehouse_id))
    ).first()
    return _warehouse(row) if row else None


async def page_warehouses(
    session: AsyncSession, platform_only: bool, after: str | None, limit: int
) -> list[Warehouse]:
    query = select(warehouses)
    if platform_only:
        query = query.where(warehouses.c.platform.is_(True))
    if after:
        query = query.where(warehouses.c.warehouse_id > after)
    rows = (await session.execute(query.order_by(warehouses.c.warehouse_id).limit(limit))).all()
    return [_warehouse(r) for r in rows]


async def sites(session: AsyncSession, warehouse_ids: Iterable[str]) -> dict[str, Site]:
    ids = list(set(warehouse_ids))
    if not ids:
        return {}
    rows = (
        await session.execute(
            select(warehouses.c.warehouse_id, warehouses.c.region, warehouses.c.platform).where(
                warehouses.c.warehouse_id.in_(ids)
            )
        )
    ).all()
    return {r.warehouse_id: Site(r.region, r.platform) for r in rows}


async def platform_among(session: AsyncSession, warehouse_ids: Iterable[str]) -> set[str]:
    return {w for w, site in (await sites(session, warehouse_ids)).items() if site.platform}


async def enrol(
    session: AsyncSession,
    sku_id: str,
    warehouse_id: str,
    seller_id: str,
    product_id: str,
    now: datetime,
) -> bool:
    """False when the SKU was already enrolled there."""
    exists = (
        await session.execute(
            select(fbt_enrolments.c.sku_id).where(
                fbt_enrolments.c.sku_id == sku_id, fbt_enrolments.c.warehouse_id == warehouse_id
            )
        )
    ).first()
    if exists is not None:
        return False
    await session.execute(
        fbt_enrolments.insert().values(
            sku_id=sku_id,
            warehouse_id=warehouse_id,
            seller_id=seller_id,
            product_id=product_id,
            created_at=now,
        )
    )
    return True


async def enrolled(session: AsyncSession, warehouse_id: str, sku_ids: Iterable[str]) -> set[str]:
    rows = await session.execute(
        select(fbt_enrolments.c.sku_id).where(
            fbt_enrolments.c.warehouse_id == warehouse_id,
            fbt_enrolments.c.sku_id.in_(list(set(sku_ids))),
        )
    )
    return set(rows.scalars())


async def inbound_by_key(session: AsyncSession, seller_id: str, key: str) -> str | None:
    query = select(inbound_shipments.c.inbound_id).where(
        inbound_shipments.c.seller_id == seller_id, inbound_shipments.c.idempotency_key == key
    )
    return (await session.execute(query)).scalar_one_or_none()


async def insert_inbound(session: AsyncSession, shipment: InboundShipment, key: str) -> None:
    await session.execute(
        inbound_shipments.insert().values(
            inbound_id=shipment.inbound_id,
            seller_id=shipment.seller_id,
            warehouse_id=shipment.warehouse_id,
            state=int(shipment.state),
            idempotency_key=key,
            announced_at=shipment.announced_at,
        )
    )
    for line in shipment.lines:
        await session.execute(
            inbound_lines.insert().values(
                inbound_id=shipment.inbound_id,
                sku_id=line.sku_id,
                announced=line.announced,
                received=0,
            )
        )


async def load_inbound(session: AsyncSession, inbound_ids: list[str]) -> dict[str, InboundShipment]:
    if not inbound_ids:
        return {}
    rows = (
        await session.execute(
            select(inbound_shipments).where(inbound_shipments.c.inbound_id.in_(inbound_ids))
        )
    ).all()
    lines: dict[str, list[InboundLine]] = defaultdict(list)
    for r in (
        await session.execute(
            select(inbound_lines)
            .where(inbound_lines.c.inbound_id.in_(inbound_ids))
            .order_by(inbound_lines.c.inbound_id, inbound_lines.c.sku_id)
        )
    ).all():
        lines[r.inbound_id].append(InboundLine(r.sku_id, int(r.announced), int(r.received)))
    return {
        r.inbound_id: InboundShipment(
            inbound_id=r.inbound_id,
            seller_id=r.seller_id,
            warehouse_id=r.warehouse_id,
            state=InboundState(r.state),
            lines=lines[r.inbound_id],
            announced_at=r.announced_at,
            received_at=r.received_at,
        )
        for r in rows
    }


async def page_inbound(
    session: AsyncSession, seller_id: str, after: str | None, limit: int
) -> list[str]:
    """Newest first (ids sort by creation)."""
    query = select(inbound_shipments.c.inbound_id).where(inbound_shipments.c.seller_id == seller_id)
    if after:
        query = query.where(inbound_shipments.c.inbound_id < after)
    rows = await session.execute(query.order_by(inbound_shipments.c.inbound_id.desc()).limit(limit))
    return list(rows.scalars())


async def mark_received(session: AsyncSession, shipment: InboundShipment, now: datetime) -> bool:
    """ANNOUNCED → RECEIVED with the counted lines; False when someone received it first."""
    result = await session.execute(
        update(inbound_shipments)
        .where(
            inbound_shipments.c.inbound_id == shipment.inbound_id,
            inbound_shipments.c.state == int(InboundState.ANNOUNCED),
        )
        .values(state=int(InboundState.RECEIVED), received_at=now)
    )
    if rowcount(result) != 1:
        return False
    for line in shipment.lines:
        await session.execute(
            update(inbound_lines)
            .where(
                inbound_lines.c.inbound_id == shipment.inbound_id,
                inbound_lines.c.sku_id == line.sku_id,
            )
            .values(received=line.received)
        )
    return True


async def mark_restocked(
    session: AsyncSession, inspection_id: str, order_id: str, now: datetime
) -> bool:
    """False when the inspection's units went back on hand already."""
    exists = (
        await session.execute(
            select(restocks.c.inspection_id).where(restocks.c.inspection_id == inspection_id)
        )
    ).first()
    if exists is not None:
        return False
    await session.execute(
        restocks.insert().values(inspection_id=inspection_id, order_id=order_id, created_at=now)
    )
    return True


async def record_package(
    session: AsyncSession,
    package_id: str,
    seller_id: str,
    warehouse_id: str,
    *,
    late: bool,
    lost: bool,
    at: datetime,
) -> bool:
    exists = (
        await session.execute(
            select(package_outcomes.c.package_id).where(package_outcomes.c.package_id == package_id)
        )
    ).first()
    if exists is not None:
        return False
    await session.execute(
        package_outcomes.insert().values(
            package_id=package_id,
            seller_id=seller_id,
            warehouse_id=warehouse_id,
            late=late,
            lost=lost,
            at=at,
        )
    )
    return True


async def delivery_counts(
    session: AsyncSession, seller_id: str, since: datetime
) -> tuple[int, int, int]:
    """(packages, late, lost) that ended their journey in the window."""
    o = package_outcomes.c
    row = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(_one(o.late)), 0),
                func.coalesce(func.sum(_one(o.lost)), 0),
            ).where(o.seller_id == seller_id, o.at >= since)
        )
    ).one()
    return int(row[0]), int(row[1]), int(row[2])


def _one(flag: Any) -> Any:
    """1 where the boolean column holds: portable across SQLite and PostgreSQL."""
    return case((flag.is_(True), 1), else_=0)


async def stored_units(session: AsyncSession) -> list[tuple[str, str, str, int]]:
    """(seller, platform warehouse, currency, units on hand) for every seller with stock in a
    platform warehouse."""
    rows = (
        await session.execute(
            select(
                products.c.seller_id,
                stock.c.warehouse_id,
                skus.c.currency,
                func.sum(stock.c.on_hand),
            )
            .select_from(
                stock.join(skus, skus.c.sku_id == stock.c.sku_id)
                .join(products, products.c.product_id == skus.c.product_id)
                .join(warehouses, warehouses.c.warehouse_id == stock.c.warehouse_id)
            )
            .where(warehouses.c.platform.is_(True))
            .group_by(products.c.seller_id, stock.c.warehouse_id, skus.c.currency)
        )
    ).all()
    return [(r[0], r[1], r[2], int(r[3] or 0)) for r in rows]


async def last_charged(
    session: AsyncSession, seller_id: str, warehouse_id: str, currency: str
) -> datetime | None:
    c = storage_charges.c
    last: datetime | None = (
        await session.execute(
            select(func.max(c.period_end)).where(
                c.seller_id == seller_id, c.warehouse_id == warehouse_id, c.currency == currency
            )
        )
    ).scalar_one_or_none()
    return last


async def insert_charge(
    session: AsyncSession,
    charge_id: str,
    holder: tuple[str, str, str],
    period: tuple[datetime, datetime],
    units: int,
    amount_minor: int,
) -> None:
    seller_id, warehouse_id, currency = holder
    await session.execute(
        storage_charges.insert().values(
            charge_id=charge_id,
            seller_id=seller_id,
            warehouse_id=warehouse_id,
            currency=currency,
            period_start=period[0],
            period_end=period[1],
            units=units,
            amount_minor=amount_minor,
        )
    )
