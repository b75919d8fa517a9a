"""Queries and updates over payment intents and provider refunds (caller's session)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream_commerce.domain.leaks import OpenIntent, UnconfirmedRefund
from shopstream_commerce.domain.payments import IntentState, holds_order
from shopstream_commerce.store.tables import payment_intents, payments, provider_refunds
from shopstream_platform.db.database import rowcount

REFUND_PENDING, REFUND_DONE, REFUND_REFUSED = 1, 2, 3


@dataclass(frozen=True)
class Intent:
    intent_id: str
    order_id: str
    buyer_id: str
    idempotency_key: str
    state: IntentState
    amount_minor: int
    currency: str
    payment_id: str = ""
    message: str = ""


@dataclass(frozen=True)
class ProviderRefund:
    refund_key: str
    order_id: str
    buyer_id: str
    payment_id: str
    intent_id: str
    refund_id: str
    cause: int
    state: int
    amount_minor: int
    currency: str


def _intent(r: Any) -> Intent:
    return Intent(
        r.intent_id,
        r.order_id,
        r.buyer_id,
        r.idempotency_key,
        IntentState(r.state),
        r.amount_minor,
        r.currency,
        r.payment_id,
        r.message,
    )


def _refund(r: Any) -> ProviderRefund:
    return ProviderRefund(
        r.refund_key,
        r.order_id,
        r.buyer_id,
        r.payment_id,
        r.intent_id,
        r.refund_id,
        r.cause,
        r.state,
        r.amount_minor,
        r.currency,
    )


async def insert_intent(session: AsyncSession, intent: Intent, at: datetime) -> None:
    """Raises IntegrityError when another intent holds the order."""
    await session.execute(
        payment_intents.insert().values(
            intent_id=intent.intent_id,
            order_id=intent.order_id,
            buyer_id=intent.buyer_id,
            idempotency_key=intent.idempotency_key,
            holder=intent.order_id,
            state=int(intent.state),
            amount_minor=intent.amount_minor,
            currency=intent.currency,
            payment_id="",
            message="",
            created_at=at,
            updated_at=at,
            checks=0,
        )
    )


async def load_intent(session: AsyncSession, intent_id: str) -> Intent | None:
    row = (
        await session.execute(
            select(payment_intents).where(payment_intents.c.intent_id == intent_id)
        )
    ).first()
    return None if row is None else _intent(row)


async def holding_intent(session: AsyncSession, order_id: str) -> Intent | None:
    row = (
        await session.execute(select(payment_intents).where(payment_intents.c.holder == order_id))
    ).first()
    return None if row is None else _intent(row)


async def move_intent(
    session: AsyncSession,
    intent: Intent,
    to: IntentState,
    at: datetime,
    *,
    payment_id: str = "",
    message: str = "",
) -> bool:
    """Move the intent from its loaded state to `to`; False when someone else moved it first."""
    result = await session.execute(
        update(payment_intents)
        .where(
            payment_intents.c.intent_id == intent.intent_id,
            payment_intents.c.state == int(intent.state),
        )
        .values(
            state=int(to),
            holder=intent.order_id if holds_order(to) else None,
            payment_id=payment_id or intent.payment_id,
            message=message[:500],
            updated_at=at,
        )
    )
    return rowcount(result) == 1


async def touch_intent(session: AsyncSession, intent_id: str, at: datetime) -> None:
    """The sweeper asked about this intent and got no answer: ask again one interval later."""
    await session.execute(
        update(payment_intents)
        .where(payment_intents.c.intent_id == intent_id)
        .values(updated_at=at, checks=payment_intents.c.checks + 1)
    )


async def open_intents(
    session: AsyncSession, older_than: datetime, limit: int = 100
) -> list[Intent]:
    rows = (
        await session.execute(
            select(payment_intents)
            .where(
                payment_intents.c.state == int(IntentState.OPEN),
                payment_intents.c.updated_at <= older_than,
            )
            .order_by(payment_intents.c.updated_at)
            .limit(limit)
        )
    ).all()
    return [_intent(r) for r in rows]


async def insert_provider_refund(
    session: AsyncSession, refund: ProviderRefund, at: datetime
) -> bool:
    """Queue a refund once per key; False when it is already queued."""
    exists = (
        await session.execute(
            select(provider_refunds.c.refund_key).where(
                provider_refunds.c.refund_key == refund.refund_key
            )
        )
    ).first()
    if exists is not None:
        return False
    await session.execute(
        provider_refunds.insert().values(
            refund_key=refund.refund_key,
            order_id=refund.order_id,
            buyer_id=refund.buyer_id,
            payment_id=refund.payment_id,
            intent_id=refund.intent_id,
            refund_id=refund.refund_id,
            cause=refund.cause,
            state=REFUND_PENDING,
            amount_minor=refund.amount_minor,
            currency=refund.currency,
            provider_refund_id="",
            message="",
            created_at=at,
        )
    )
    return True


async def pending_refunds(session: AsyncSession, limit: int = 100) -> list[ProviderRefund]:
    rows = (
        await session.execute(
            select(provider_refunds)
            .where(provider_refunds.c.state == REFUND_PENDING)
            .order_by(provider_refunds.c.created_at)
            .limit(limit)
        )
    ).all()
    return [_refund(r) for r in rows]


async def load_provider_refund(session: AsyncSession, key: str) -> ProviderRefund | None:
    row = (
        await session.execute(select(provider_refunds).where(provider_refunds.c.refund_key == key))
    ).first()
    return None if row is None else _refund(row)


async def finish_refund(
    session: AsyncSession, key: str, state: int, provider_refund_id: str, message: str, at: datetime
) -> bool:
    result = await session.execute(
        update(provider_refunds)
        .where(provider_refunds.c.refund_key == key, provider_refunds.c.state == REFUND_PENDING)
        .values(
            state=state,
            provider_refund_id=provider_refund_id,
            message=message[:500],
            completed_at=at,
        )
    )
    return rowcount(result) == 1


async def overdue_intents(
    session: AsyncSession, opened_before: datetime, limit: int = 500
) -> list[OpenIntent]:
    """OPEN intents opened at or before `opened_before` (the sweeper should have resolved them)."""
    rows = (
        await session.execute(
            select(payment_intents)
            .where(
                payment_intents.c.state == int(IntentState.OPEN),
                payment_intents.c.created_at <= opened_before,
            )
            .order_by(payment_intents.c.created_at)
            .limit(limit)
        )
    ).all()
    return [
        OpenIntent(r.intent_id, r.order_id, r.amount_minor, r.currency, r.created_at, r.checks)
        for r in rows
    ]


async def unconfirmed_refunds(
    session: AsyncSession, queued_before: datetime, limit: int = 500
) -> list[UnconfirmedRefund]:
    """Refunds the provider refused, and pending ones queued at or before `queued_before`."""
    rows = (
        await session.execute(
            select(provider_refunds)
            .where(
                or_(
                    provider_refunds.c.state == REFUND_REFUSED,
                    and_(
                        provider_refunds.c.state == REFUND_PENDING,
                        provider_refunds.c.created_at <= queued_before,
                    ),
                )
            )
            .order_by(provider_refunds.c.created_at)
            .limit(limit)
        )
    ).all()
    return [
        UnconfirmedRefund(
            r.refund_key,
            r.order_id,
            r.amount_minor,
            r.currency,
            r.state == REFUND_REFUSED,
            r.message,
            r.created_at,
        )
        for r in rows
    ]


async def money_by_order(session: AsyncSession) -> dict[str, tuple[int, int]]:
    """Commerce's side of the invariant per order: (charges recorded as succeeded, refunds the
    provider confirmed). Compare with the provider's (charged, refunded)."""
    totals: dict[str, tuple[int, int]] = {}
    succeeded = 1  # PaymentStatus.SUCCEEDED
    for order_id, amount in (
        await session.execute(
            select(payments.c.order_id, func.sum(payments.c.amount_minor))
            .where(payments.c.status == succeeded)
            .group_by(payments.c.order_id)
        )
    ).all():
        totals[order_id] = (int(amount), 0)
    for order_id, amount in (
        await session.execute(
            select(provider_refunds.c.order_id, func.sum(provider_refunds.c.amount_minor))
            .where(provider_refunds.c.state == REFUND_DONE)
            .group_by(provider_refunds.c.order_id)
        )
    ).all():
        paid, _ = totals.get(order_id, (0, 0))
        totals[order_id] = (paid, int(amount))
    return totals
