"""Queries and updates over commerce's tables; every function runs in the caller's session."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream_commerce.domain.after_sales import OPEN, AfterSaleType, RequestState
from shopstream_commerce.domain.commission_rates import RateChange, RateLock
from shopstream_commerce.domain.leaks import ENDED, HeldStock, Reservation
from shopstream_commerce.domain.orders import OrderState
from shopstream_commerce.domain.records import (
    Attribution,
    LedgerRecord,
    Line,
    LiveProductRecord,
    LiveRecord,
    OrderRecord,
    RefundRecord,
    SkuInfo,
)
from shopstream_commerce.store.tables import (
    approved_creators,
    catalog_skus,
    commission_locks,
    commission_rates,
    flagged_clicks,
    ledger,
    live_pins,
    live_product_stats,
    live_sessions,
    order_lines,
    orders,
    payments,
    refund_lines,
    refunds,
    risk_creators,
)
from shopstream_platform.db.database import rowcount

# --- catalog replica ------------------------------------------------------------------------


async def upsert_sku(session: AsyncSession, sku: SkuInfo, product_version: int) -> None:
    """Store a SKU as of a product version; older versions than the stored one are ignored."""
    current = (
        await session.execute(
            select(catalog_skus.c.product_version).where(catalog_skus.c.sku_id == sku.sku_id)
        )
    ).scalar_one_or_none()
    values = {
        "product_id": sku.product_id,
        "seller_id": sku.seller_id,
        "price_minor": sku.price_minor,
        "currency": sku.currency,
        "listing_status": sku.listing_status,
        "product_version": product_version,
        "category_id": sku.category_id,
    }
    if current is None:
        await session.execute(catalog_skus.insert().values(sku_id=sku.sku_id, **values))
    elif product_version >= current:
        await session.execute(
            update(catalog_skus).where(catalog_skus.c.sku_id == sku.sku_id).values(**values)
        )


async def set_listing_status(session: AsyncSession, product_id: str, status: int) -> None:
    await session.execute(
        update(catalog_skus)
        .where(catalog_skus.c.product_id == product_id)
        .values(listing_status=status)
    )


async def skus(session: AsyncSession, sku_ids: Iterable[str]) -> dict[str, SkuInfo]:
    rows = (
        await session.execute(
            select(catalog_skus).where(catalog_skus.c.sku_id.in_(list(set(sku_ids))))
        )
    ).all()
    return {
        r.sku_id: SkuInfo(
            r.sku_id,
            r.product_id,
            r.seller_id,
            r.price_minor,
            r.currency,
            r.listing_status,
            r.category_id,
        )
        for r in rows
    }


async def product_seller(session: AsyncSession, product_id: str) -> str | None:
    query = select(catalog_skus.c.seller_id).where(catalog_skus.c.product_id == product_id).limit(1)
    return (await session.execute(query)).scalar_one_or_none()


# --- orders ---------------------------------------------------------------------------------


async def order_id_for_key(session: AsyncSession, buyer_id: str, key: str) -> str | None:
    query = select(orders.c.order_id).where(
        orders.c.buyer_id == buyer_id, orders.c.idempotency_key == key
    )
    return (await session.execute(query)).scalar_one_or_none()


async def insert_order(session: AsyncSession, order: OrderRecord, idempotency_key: str) -> None:
    await session.execute(
        orders.insert().values(
            order_id=order.order_id,
            buyer_id=order.buyer_id,
            seller_id=order.seller_id,
            idempotency_key=idempotency_key,
            state=int(order.state),
            total_minor=order.total_minor,
            currency=order.currency,
            tracking_consent=order.tracking_consent,
            placed_at=order.placed_at,
            updated_at=order.updated_at,
            version=order.version,
            rejection_reason="",
            rejected_sku_id="",
            payment_id="",
            tracking_number="",
            settled=False,
            ship_to_region=order.ship_to_region,
        )
    )
    for position, line in enumerate(order.lines):
        a = line.attribution
        await session.execute(
            order_lines.insert().values(
                order_id=order.order_id,
                line_id=line.line_id,
                position=position,
                sku_id=line.sku_id,
                product_id=line.product_id,
                seller_id=line.seller_id,
                quantity=line.quantity,
                unit_price_minor=line.unit_price_minor,
                currency=line.currency,
                creator_id=a.creator_id,
                live_session_id=a.live_session_id,
                video_id=a.video_id,
                ad_click_id=a.ad_click_id,
                refunded_quantity=0,
                commission_bps=line.commission_bps,
                category_id=line.category_id,
                flash_sale_id=line.flash_sale_id,
            )
        )


async def load_orders(
    session: AsyncSession, order_ids: list[str], *, for_update: bool = False
) -> dict[str, OrderRecord]:
    if not order_ids:
        return {}
    query = select(orders).where(orders.c.order_id.in_(order_ids))
    if for_update:
        query = query.with_for_update()
    rows = (await session.execute(query)).all()
    line_rows = (
        await session.execute(
            select(order_lines)
            .where(order_lines.c.order_id.in_(order_ids))
            .order_by(order_lines.c.position)
        )
    ).all()
    lines: dict[str, list[Line]] = defaultdict(list)
    for r in line_rows:
        lines[r.order_id].append(
            Line(
                line_id=r.line_id,
                sku_id=r.sku_id,
                product_id=r.product_id,
                seller_id=r.seller_id,
                quantity=r.quantity,
                unit_price_minor=r.unit_price_minor,
                currency=r.currency,
                attribution=Attribution(r.creator_id, r.live_session_id, r.video_id, r.ad_click_id),
                refunded_quantity=r.refunded_quantity,
                commission_bps=r.commission_bps,
                category_id=r.category_id,
                flash_sale_id=r.flash_sale_id,
            )
        )
    return {
        r.order_id: OrderRecord(
            order_id=r.order_id,
            buyer_id=r.buyer_id,
            seller_id=r.seller_id,
            state=OrderState(r.state),
            lines=lines[r.order_id],
            total_minor=r.total_minor,
            currency=r.currency,
            tracking_consent=r.tracking_consent,
            placed_at=r.placed_at,
            updated_at=r.updated_at,
            version=r.version,
            expires_at=r.expires_at,
            rejection_reason=r.rejection_reason,
            rejected_sku_id=r.rejected_sku_id,
            payment_id=r.payment_id,
            tracking_number=r.tracking_number,
            ship_by=r.ship_by,
            shipped_at=r.shipped_at,
            delivered_at=r.delivered_at,
            ship_to_region=r.ship_to_region,
        )
        for r in rows
    }


async def update_order(session: AsyncSession, order: OrderRecord, expected_version: int) -> bool:
    """Write the order's state fields if it is still at `expected_version` (optimistic lock)."""
    result = await session.execute(
        update(orders)
        .where(orders.c.order_id == order.order_id, orders.c.version == expected_version)
        .values(
            state=int(order.state),
            updated_at=order.updated_at,
            version=order.version,
            expires_at=order.expires_at,
            rejection_reason=order.rejection_reason,
            rejected_sku_id=order.rejected_sku_id,
            payment_id=order.payment_id,
            tracking_number=order.tracking_number,
            ship_by=order.ship_by,
            shipped_at=order.shipped_at,
            delivered_at=order.delivered_at,
        )
    )
    return rowcount(result) == 1


async def set_paid_at(session: AsyncSession, order_id: str, paid_at: datetime) -> None:
    await session.execute(
        update(orders).where(orders.c.order_id == order_id).values(paid_at=paid_at)
    )


async def add_refunded(session: AsyncSession, order_id: str, line_id: str, quantity: int) -> None:
    await session.execute(
        update(order_lines)
        .where(order_lines.c.order_id == order_id, order_lines.c.line_id == line_id)
        .values(refunded_quantity=order_lines.c.refunded_quantity + quantity)
    )


async def list_orders(
    session: AsyncSession, *, buyer_id: str = "", seller_id: str = "", after: str = "", limit: int
) -> list[str]:
    """Order ids newest first (ids are time-ordered), after the page cursor."""
    column = orders.c.buyer_id if buyer_id else orders.c.seller_id
    conditions = [column == (buyer_id or seller_id)]
    if after:
        conditions.append(orders.c.order_id < after)
    query = (
        select(orders.c.order_id)
        .where(and_(*conditions))
        .order_by(orders.c.order_id.desc())
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


async def expired_orders(session: AsyncSession, now: datetime, limit: int = 200) -> list[str]:
    query = (
        select(orders.c.order_id)
        .where(orders.c.state == int(OrderState.RESERVED), orders.c.expires_at <= now)
        .order_by(orders.c.expires_at)
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


async def settle_candidates(
    session: AsyncSession, delivered_before: datetime, limit: int = 200
) -> list[str]:
    query = (
        select(orders.c.order_id)
        .where(
            orders.c.settled.is_(False),
            orders.c.delivered_at.is_not(None),
            orders.c.delivered_at <= delivered_before,
            orders.c.state.in_(
                [
                    int(OrderState.DELIVERED),
                    int(OrderState.PARTIALLY_REFUNDED),
                    int(OrderState.REFUNDED),
                ]
            ),
        )
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())


async def mark_settled(session: AsyncSession, order_id: str) -> bool:
    result = await session.execute(
        update(orders)
        .where(orders.c.order_id == order_id, orders.c.settled.is_(False))
        .values(settled=True)
    )
    return rowcount(result) == 1


# --- catalog's hold on an order's stock (the day-end check) ----------------------------------


async def reservation(session: AsyncSession, order_id: str) -> Reservation | None:
    query = select(orders.c.reservation).where(orders.c.order_id == order_id)
    found = (await session.execute(query)).scalar_one_or_none()
    return None if found is None else Reservation(found)


async def set_reservation(
    session: AsyncSession, order_id: str, current: Reservation, to: Reservation, at: datetime
) -> bool:
    result = await session.execute(
        update(orders)
        .where(orders.c.order_id == order_id, orders.c.reservation == int(current))
        .values(reservation=int(to), reservation_at=at)
    )
    return rowcount(result) == 1


async def held_after_end(session: AsyncSession, limit: int = 500) -> list[HeldStock]:
    """Orders whose stock catalog still holds although their state will never ship."""
    rows = (
        await session.execute(
            select(orders.c.order_id, orders.c.state, orders.c.updated_at)
            .where(
                orders.c.reservation == int(Reservation.HELD),
                orders.c.state.in_([int(s) for s in ENDED]),
            )
            .order_by(orders.c.updated_at)
            .limit(limit)
        )
    ).all()
    return [HeldStock(r.order_id, OrderState(r.state), r.updated_at) for r in rows]


# --- payments -------------------------------------------------------------------------------


async def record_payment(
    session: AsyncSession,
    *,
    attempt_id: str,
    payment_id: str,
    order_id: str,
    status: int,
    amount_minor: int,
    currency: str,
    message: str,
    at: datetime,
) -> None:
    await session.execute(
        payments.insert().values(
            attempt_id=attempt_id,
            payment_id=payment_id,
            order_id=order_id,
            status=status,
            amount_minor=amount_minor,
            currency=currency,
            message=message,
            created_at=at,
        )
    )


# --- refunds --------------------------------------------------------------------------------


async def insert_refund(
    session: AsyncSession, refund: RefundRecord, at: datetime, line_amounts: dict[str, int]
) -> None:
    await session.execute(
        refunds.insert().values(
            refund_id=refund.refund_id,
            order_id=refund.order_id,
            state=int(refund.state),
            amount_minor=refund.amount_minor,
            currency=refund.currency,
            reason=refund.reason,
            requested_at=at,
            kind=int(refund.kind),
            reject_reason=0,
            reject_note="",
            return_tracking="",
            escalation_note="",
            updated_at=at,
            respond_by=refund.respond_by,
            auto_approved=False,
        )
    )
    for line_id, quantity in refund.lines.items():
        await session.execute(
            refund_lines.insert().values(
                refund_id=refund.refund_id,
                line_id=line_id,
                quantity=quantity,
                amount_minor=line_amounts[line_id],
            )
        )


async def load_refund(session: AsyncSession, refund_id: str) -> RefundRecord | None:
    row = (await session.execute(select(refunds).where(refunds.c.refund_id == refund_id))).first()
    if row is None:
        return None
    lines = (
        await session.execute(select(refund_lines).where(refund_lines.c.refund_id == refund_id))
    ).all()
    return RefundRecord(
        refund_id=row.refund_id,
        order_id=row.order_id,
        state=RequestState(row.state),
        lines={r.line_id: r.quantity for r in lines},
        amount_minor=row.amount_minor,
        currency=row.currency,
        reason=row.reason,
        kind=AfterSaleType(row.kind),
        reject_reason=row.reject_reason,
        reject_note=row.reject_note,
        return_tracking=row.return_tracking,
        escalation_note=row.escalation_note,
        respond_by=row.respond_by,
        auto_approved=bool(row.auto_approved),
    )


async def unanswered_requests(session: AsyncSession, now: datetime, limit: int = 200) -> list[str]:
    """Requests still REQUESTED whose seller's deadline passed, the longest overdue first."""
    rows = (
        await session.execute(
            select(refunds.c.refund_id)
            .where(
                refunds.c.state == int(RequestState.REQUESTED),
                refunds.c.respond_by.is_not(None),
                refunds.c.respond_by <= now,
            )
            .order_by(refunds.c.respond_by)
            .limit(limit)
        )
    ).all()
    return [r.refund_id for r in rows]


async def refund_line_amounts(session: AsyncSession, refund_id: str) -> dict[str, int]:
    rows = (
        await session.execute(select(refund_lines).where(refund_lines.c.refund_id == refund_id))
    ).all()
    return {r.line_id: r.amount_minor for r in rows}


async def move_refund(
    session: AsyncSession, refund: RefundRecord, to: RequestState, at: datetime, **values: Any
) -> bool:
    """Move the request from its loaded state to `to` (with `values`); False when someone moved
    it first."""
    if to == RequestState.APPROVED:
        values["approved_at"] = at
    result = await session.execute(
        update(refunds)
        .where(refunds.c.refund_id == refund.refund_id, refunds.c.state == int(refund.state))
        .values(state=int(to), updated_at=at, **values)
    )
    return rowcount(result) == 1


async def claimed_quantities(session: AsyncSession, order_id: str) -> dict[str, int]:
    """Units per line in open requests (they may not be asked for twice)."""
    rows = (
        await session.execute(
            select(refund_lines.c.line_id, func.sum(refund_lines.c.quantity))
            .select_from(
                refund_lines.join(refunds, refunds.c.refund_id == refund_lines.c.refund_id)
            )
            .where(refunds.c.order_id == order_id, refunds.c.state.in_([int(s) for s in OPEN]))
            .group_by(refund_lines.c.line_id)
        )
    ).all()
    return {line_id: int(q) for line_id, q in rows}


async def open_requests(
    session: AsyncSession, order_id: str
) -> list[tuple[str, AfterSaleType, RequestState]]:
    """(request id, type, state) of the order's open after-sales requests."""
    rows = (
        await session.execute(
            select(refunds.c.refund_id, refunds.c.kind, refunds.c.state).where(
                refunds.c.order_id == order_id, refunds.c.state.in_([int(s) for s in OPEN])
            )
        )
    ).all()
    return [(r.refund_id, AfterSaleType(r.kind), RequestState(r.state)) for r in rows]


# --- live sessions --------------------------------------------------------------------------


async def insert_live(session: AsyncSession, live: LiveRecord) -> None:
    await session.execute(
        live_sessions.insert().values(
            live_session_id=live.live_session_id,
            creator_id=live.creator_id,
            title=live.title,
            state=live.state,
            started_at=live.started_at,
            scheduled_for=live.scheduled_for,
            current_viewers=0,
            peak_viewers=0,
            total_views=0,
            orders=0,
            gmv_minor=0,
            currency="",
        )
    )


async def pin(session: AsyncSession, live_session_id: str, product_id: str, at: datetime) -> bool:
    exists = (
        await session.execute(
            select(live_pins.c.product_id).where(
                live_pins.c.live_session_id == live_session_id, live_pins.c.product_id == product_id
            )
        )
    ).first()
    if exists is not None:
        return False
    await session.execute(
        live_pins.insert().values(
            live_session_id=live_session_id, product_id=product_id, pinned_at=at
        )
    )
    return True


async def load_live(session: AsyncSession, live_session_id: str) -> LiveRecord | None:
    row = (
        await session.execute(
            select(live_sessions).where(live_sessions.c.live_session_id == live_session_id)
        )
    ).first()
    if row is None:
        return None
    pinned = (
        await session.execute(
            select(live_pins.c.product_id)
            .where(live_pins.c.live_session_id == live_session_id)
            .order_by(live_pins.c.pinned_at)
        )
    ).scalars()
    return LiveRecord(
        live_session_id=row.live_session_id,
        creator_id=row.creator_id,
        title=row.title,
        state=row.state,
        started_at=row.started_at,
        ended_at=row.ended_at,
        current_viewers=row.current_viewers,
        peak_viewers=row.peak_viewers,
        total_views=row.total_views,
        orders=row.orders,
        gmv_minor=row.gmv_minor,
        currency=row.currency,
        scheduled_for=row.scheduled_for,
        pinned=list(pinned),
        products=[
            LiveProductRecord(r.product_id, r.orders, r.units, r.gmv_minor)
            for r in (
                await session.execute(
                    select(live_product_stats)
                    .where(live_product_stats.c.live_session_id == live_session_id)
                    .order_by(
                        live_product_stats.c.gmv_minor.desc(), live_product_stats.c.product_id
                    )
                )
            ).all()
        ],
    )


async def start_scheduled(
    session: AsyncSession, live_session_id: str, at: datetime, live_state: int, scheduled: int
) -> bool:
    result = await session.execute(
        update(live_sessions)
        .where(
            live_sessions.c.live_session_id == live_session_id,
            live_sessions.c.state == scheduled,
        )
        .values(state=live_state, started_at=at)
    )
    return rowcount(result) == 1


async def end_live(
    session: AsyncSession, live_session_id: str, at: datetime, ended_state: int, live_state: int
) -> bool:
    result = await session.execute(
        update(live_sessions)
        .where(
            live_sessions.c.live_session_id == live_session_id, live_sessions.c.state == live_state
        )
        .values(state=ended_state, ended_at=at, current_viewers=0)
    )
    return rowcount(result) == 1


async def add_live_sale(
    session: AsyncSession, live_session_id: str, amount_minor: int, currency: str
) -> bool:
    result = await session.execute(
        update(live_sessions)
        .where(live_sessions.c.live_session_id == live_session_id)
        .values(
            orders=live_sessions.c.orders + 1,
            gmv_minor=live_sessions.c.gmv_minor + amount_minor,
            currency=currency,
        )
    )
    return rowcount(result) == 1


async def add_live_product_sale(
    session: AsyncSession,
    live_session_id: str,
    product_id: str,
    units: int,
    amount_minor: int,
    currency: str,
) -> None:
    stats = live_product_stats.c
    result = await session.execute(
        update(live_product_stats)
        .where(stats.live_session_id == live_session_id, stats.product_id == product_id)
        .values(
            orders=stats.orders + 1,
            units=stats.units + units,
            gmv_minor=stats.gmv_minor + amount_minor,
        )
    )
    if rowcount(result) == 0:
        await session.execute(
            live_product_stats.insert().values(
                live_session_id=live_session_id,
                product_id=product_id,
                orders=1,
                units=units,
                gmv_minor=amount_minor,
                currency=currency,
            )
        )


async def set_live_views(
    session: AsyncSession, live_session_id: str, current: int, total: int
) -> bool:
    """Take the social platform's counts; total views never go backwards (late, reordered stats)."""
    sessions = live_sessions.c
    result = await session.execute(
        update(live_sessions)
        .where(sessions.live_session_id == live_session_id)
        .values(
            current_viewers=current,
            peak_viewers=case(
                (sessions.peak_viewers < current, current), else_=sessions.peak_viewers
            ),
            total_views=case((sessions.total_views < total, total), else_=sessions.total_views),
        )
    )
    return rowcount(result) == 1


# --- commissions ----------------------------------------------------------------------------


async def rate_changes(session: AsyncSession, product_id: str) -> list[RateChange]:
    rows = (
        await session.execute(
            select(commission_rates).where(
                commission_rates.c.product_id == product_id,
                commission_rates.c.superseded.is_(False),
            )
        )
    ).all()
    return [
        RateChange(
            r.rate_bps, r.set_at, r.effective_from, r.creator_id, r.shop_ads, r.require_approval
        )
        for r in rows
    ]


async def add_rate_change(
    session: AsyncSession, seller_id: str, product_id: str, change: RateChange
) -> None:
    rates = commission_rates.c
    # A change of the same scope not yet in effect is replaced by this newer decision.
    await session.execute(
        update(commission_rates)
        .where(
            rates.product_id == product_id,
            rates.creator_id == change.creator_id,
            rates.shop_ads.is_(change.shop_ads),
            rates.effective_from > change.set_at,
        )
        .values(superseded=True)
    )
    await session.execute(
        commission_rates.insert().values(
            seller_id=seller_id,
            product_id=product_id,
            rate_bps=change.rate_bps,
            set_at=change.set_at,
            effective_from=change.effective_from,
            superseded=False,
            creator_id=change.creator_id,
            shop_ads=change.shop_ads,
            require_approval=change.require_approval,
        )
    )


async def approve_creator(
    session: AsyncSession, product_id: str, creator_id: str, at: datetime
) -> bool:
    """False when the creator was approved for the product already."""
    exists = (
        await session.execute(
            select(approved_creators.c.creator_id).where(
                approved_creators.c.product_id == product_id,
                approved_creators.c.creator_id == creator_id,
            )
        )
    ).first()
    if exists is not None:
        return False
    await session.execute(
        approved_creators.insert().values(
            product_id=product_id, creator_id=creator_id, approved_at=at
        )
    )
    return True


async def creator_approved(session: AsyncSession, product_id: str, creator_id: str) -> bool:
    found = (
        await session.execute(
            select(approved_creators.c.creator_id).where(
                approved_creators.c.product_id == product_id,
                approved_creators.c.creator_id == creator_id,
            )
        )
    ).first()
    return found is not None


async def rate_locks(session: AsyncSession, product_id: str, creator_id: str) -> list[RateLock]:
    rows = (
        await session.execute(
            select(commission_locks).where(
                commission_locks.c.product_id == product_id,
                commission_locks.c.creator_id == creator_id,
            )
        )
    ).all()
    return [RateLock(r.creator_id, r.rate_bps, r.locked_until) for r in rows]


async def lock_rate(session: AsyncSession, product_id: str, lock: RateLock, at: datetime) -> None:
    """Keep `lock.rate_bps` for the creator until `lock.until` (replacing an older lock)."""
    await session.execute(
        delete(commission_locks).where(
            commission_locks.c.product_id == product_id,
            commission_locks.c.creator_id == lock.creator_id,
        )
    )
    await session.execute(
        commission_locks.insert().values(
            product_id=product_id,
            creator_id=lock.creator_id,
            rate_bps=lock.rate_bps,
            locked_until=lock.until,
            set_at=at,
        )
    )


async def promoting_creators(session: AsyncSession, product_id: str, since: datetime) -> list[str]:
    """Creators with attributed lines of the product in orders placed since `since`."""
    rows = (
        await session.execute(
            select(order_lines.c.creator_id)
            .select_from(order_lines.join(orders, orders.c.order_id == order_lines.c.order_id))
            .where(
                order_lines.c.product_id == product_id,
                order_lines.c.creator_id != "",
                orders.c.placed_at >= since,
            )
            .distinct()
        )
    ).all()
    return sorted(r.creator_id for r in rows)


async def append_once(session: AsyncSession, table: Table, **values: Any) -> bool:
    """Insert a row of an append-only ledger once per cause (its `dedup_key`); False when this
    cause was already recorded."""
    exists = (
        await session.execute(
            select(table.c.dedup_key).where(table.c.dedup_key == values["dedup_key"])
        )
    ).first()
    if exists is not None:
        return False
    await session.execute(table.insert().values(**values))
    return True


async def insert_ledger(session: AsyncSession, entry: LedgerRecord, dedup_key: str) -> bool:
    """Append an entry once per cause; False when this cause was already recorded."""
    return await append_once(
        session,
        ledger,
        entry_id=entry.entry_id,
        creator_id=entry.creator_id,
        kind=entry.kind,
        account=entry.account,
        amount_minor=entry.amount_minor,
        currency=entry.currency,
        order_id=entry.order_id,
        line_id=entry.line_id,
        product_id=entry.product_id,
        rate_bps=entry.rate_bps,
        created_at=entry.created_at,
        dedup_key=dedup_key,
        frozen_reason=entry.frozen_reason,
    )


async def ledger_page(
    session: AsyncSession, creator_id: str, after: str, limit: int
) -> list[LedgerRecord]:
    conditions = [ledger.c.creator_id == creator_id]
    if after:
        conditions.append(ledger.c.entry_id < after)
    rows = (
        await session.execute(
            select(ledger).where(and_(*conditions)).order_by(ledger.c.entry_id.desc()).limit(limit)
        )
    ).all()
    return [_ledger_record(r) for r in rows]


async def balances(session: AsyncSession, creator_id: str) -> dict[tuple[int, str], int]:
    """Sum of entries per (account, currency)."""
    rows = (
        await session.execute(
            select(ledger.c.account, ledger.c.currency, func.sum(ledger.c.amount_minor))
            .where(ledger.c.creator_id == creator_id)
            .group_by(ledger.c.account, ledger.c.currency)
        )
    ).all()
    return {(account, currency): int(total) for account, currency, total in rows}


async def ledger_for_order(session: AsyncSession, order_id: str) -> list[LedgerRecord]:
    rows = (await session.execute(select(ledger).where(ledger.c.order_id == order_id))).all()
    return [_ledger_record(r) for r in rows]


def _ledger_record(r: Any) -> LedgerRecord:
    return LedgerRecord(
        entry_id=r.entry_id,
        creator_id=r.creator_id,
        kind=r.kind,
        account=r.account,
        amount_minor=r.amount_minor,
        currency=r.currency,
        order_id=r.order_id,
        line_id=r.line_id,
        product_id=r.product_id,
        rate_bps=r.rate_bps,
        created_at=r.created_at,
        frozen_reason=r.frozen_reason,
    )


# --- risk signals ---------------------------------------------------------------------------


async def set_creator_flags(
    session: AsyncSession, creator_id: str, flags: list[str], as_of: datetime
) -> None:
    """Keep the creator's flags as of `as_of`; an older report changes nothing."""
    current = (
        await session.execute(
            select(risk_creators.c.as_of).where(risk_creators.c.creator_id == creator_id)
        )
    ).scalar_one_or_none()
    values = {"flags": ",".join(sorted(flags))[:500], "as_of": as_of}
    if current is None:
        await session.execute(risk_creators.insert().values(creator_id=creator_id, **values))
    elif as_of >= current:
        await session.execute(
            update(risk_creators).where(risk_creators.c.creator_id == creator_id).values(**values)
        )


async def creator_flags(session: AsyncSession, creator_id: str) -> list[str]:
    found = (
        await session.execute(
            select(risk_creators.c.flags).where(risk_creators.c.creator_id == creator_id)
        )
    ).scalar_one_or_none()
    return [f for f in (found or "").split(",") if f]


async def flag_click(session: AsyncSession, click_id: str, reason: str, at: datetime) -> None:
    exists = (
        await session.execute(
            select(flagged_clicks.c.click_id).where(flagged_clicks.c.click_id == click_id)
        )
    ).first()
    if exists is None:
        await session.execute(
            flagged_clicks.insert().values(click_id=click_id, reason=reason, flagged_at=at)
        )


async def click_flag(session: AsyncSession, click_id: str) -> str | None:
    if not click_id:
        return None
    return (
        await session.execute(
            select(flagged_clicks.c.reason).where(flagged_clicks.c.click_id == click_id)
        )
    ).scalar_one_or_none()
