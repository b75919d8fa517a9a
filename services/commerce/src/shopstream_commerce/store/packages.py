"""Queries and updates over packages and their lines; every function runs in the caller's session."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream_commerce.domain.orders import OrderState
from shopstream_commerce.domain.packages import PackageLine, PackageRecord, PackageState
from shopstream_commerce.store.tables import orders, package_lines, packages
from shopstream_platform.db.database import rowcount


async def insert(session: AsyncSession, package: PackageRecord) -> None:
    await session.execute(
        packages.insert().values(
            package_id=package.package_id,
            order_id=package.order_id,
            seller_id=package.seller_id,
            warehouse_id=package.warehouse_id,
            fulfilled_by_platform=package.fulfilled_by_platform,
            state=int(package.state),
            carrier="",
            tracking_number="",
            label="",
            late=False,
            created_at=package.created_at,
            version=1,
        )
    )
    for line in package.lines:
        await session.execute(
            package_lines.insert().values(
                package_id=package.package_id,
                line_id=line.line_id,
                sku_id=line.sku_id,
                quantity=line.quantity,
            )
        )


def _record(row: Any, lines: list[PackageLine]) -> PackageRecord:
    return PackageRecord(
        package_id=row.package_id,
        order_id=row.order_id,
        seller_id=row.seller_id,
        warehouse_id=row.warehouse_id,
        fulfilled_by_platform=row.fulfilled_by_platform,
        state=PackageState(row.state),
        lines=lines,
        carrier=row.carrier,
        tracking_number=row.tracking_number,
        label=row.label,
        ship_by=row.ship_by,
        shipped_at=row.shipped_at,
        deliver_by=row.deliver_by,
        delivered_at=row.delivered_at,
        lost_at=row.lost_at,
        late=row.late,
        created_at=row.created_at,
    )


async def _with_lines(session: AsyncSession, rows: Sequence[Any]) -> list[PackageRecord]:
    ids = [r.package_id for r in rows]
    lines: dict[str, list[PackageLine]] = defaultdict(list)
    if ids:
        for r in (
            await session.execute(
                select(package_lines)
                .where(package_lines.c.package_id.in_(ids))
                .order_by(package_lines.c.package_id, package_lines.c.line_id)
            )
        ).all():
            lines[r.package_id].append(PackageLine(r.line_id, r.sku_id, r.quantity))
    return [_record(r, lines[r.package_id]) for r in rows]


async def of_order(session: AsyncSession, order_id: str) -> list[PackageRecord]:
    rows = (
        await session.execute(
            select(packages)
            .where(packages.c.order_id == order_id)
            .order_by(packages.c.warehouse_id)
        )
    ).all()
    return await _with_lines(session, rows)


async def get(session: AsyncSession, package_id: str) -> PackageRecord | None:
    rows = (
        await session.execute(select(packages).where(packages.c.package_id == package_id))
    ).all()
    found = await _with_lines(session, rows)
    return found[0] if found else None


async def page(
    session: AsyncSession, *, order_id: str, seller_id: str, after: str | None, limit: int
) -> list[PackageRecord]:
    """Newest first (package ids sort by creation)."""
    query = select(packages)
    query = query.where(
        packages.c.order_id == order_id if order_id else packages.c.seller_id == seller_id
    )
    if after:
        query = query.where(packages.c.package_id < after)
    rows = (await session.execute(query.order_by(packages.c.package_id.desc()).limit(limit))).all()
    return await _with_lines(session, rows)


async def move(session: AsyncSession, before: PackageRecord, after: PackageRecord) -> bool:
    """Write `after`'s state fields if the package is still in `before`'s state."""
    result = await session.execute(
        update(packages)
        .where(
            packages.c.package_id == before.package_id,
            packages.c.state == int(before.state),
        )
        .values(
            state=int(after.state),
            carrier=after.carrier,
            tracking_number=after.tracking_number,
            label=after.label,
            ship_by=after.ship_by,
            shipped_at=after.shipped_at,
            deliver_by=after.deliver_by,
            delivered_at=after.delivered_at,
            lost_at=after.lost_at,
            late=after.late,
            version=packages.c.version + 1,
        )
    )
    return rowcount(result) == 1


# Orders whose platform-fulfilled packages the platform may ship: paid, not cancelled.
_SHIPPABLE = [
    int(OrderState.PAID),
    int(OrderState.PARTIALLY_SHIPPED),
    int(OrderState.PARTIALLY_REFUNDED),
]


async def platform_due(session: AsyncSession, limit: int) -> list[str]:
    """Platform-fulfilled packages waiting to ship whose order is paid."""
    query = (
        select(packages.c.package_id)
        .join(orders, orders.c.order_id == packages.c.order_id)
        .where(
            packages.c.state == int(PackageState.AWAITING_SHIPMENT),
            packages.c.fulfilled_by_platform.is_(True),
            orders.c.state.in_(_SHIPPABLE),
        )
        .order_by(packages.c.package_id)
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


async def tracked(session: AsyncSession, carrier: str, limit: int) -> list[PackageRecord]:
    """Packages on their way with `carrier`, least recently asked about first (never asked
    first), so every package gets its turn however many have no news."""
    rows = (
        await session.execute(
            select(packages)
            .where(
                and_(
                    packages.c.carrier == carrier,
                    packages.c.state.in_([int(PackageState.SHIPPED), int(PackageState.IN_TRANSIT)]),
                )
            )
            .order_by(packages.c.tracked_at.is_not(None), packages.c.tracked_at)
            .limit(limit)
        )
    ).all()
    return await _with_lines(session, rows)


async def mark_tracked(session: AsyncSession, package_ids: list[str], at: datetime) -> None:
    if package_ids:
        await session.execute(
            update(packages).where(packages.c.package_id.in_(package_ids)).values(tracked_at=at)
        )


async def replace_lines(session: AsyncSession, package_id: str, lines: list[PackageLine]) -> None:
    await session.execute(package_lines.delete().where(package_lines.c.package_id == package_id))
    for line in lines:
        await session.execute(
            package_lines.insert().values(
                package_id=package_id,
                line_id=line.line_id,
                sku_id=line.sku_id,
                quantity=line.quantity,
            )
        )
