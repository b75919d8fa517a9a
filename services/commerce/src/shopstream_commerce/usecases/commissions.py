"""Affiliate commissions: rates set by sellers, and the creators' append-only ledger.

Accrued (pending) when an attributed order is paid, reversed when its lines are refunded,
settled (pending → available) when the order completes (its after-sales window closed after
delivery: usecases/after_sales.py). A creator's
balance is by construction the sum of their ledger entries; every entry has a cause key so a
replayed cause never books twice.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from shopstream.commerce.v1 import commissions_pb2 as cpb
from shopstream_commerce import convert
from shopstream_commerce.domain import limits
from shopstream_commerce.domain.commission_rates import (
    RateChange,
    RateLock,
    affiliate_rate,
    scope_rate,
)
from shopstream_commerce.domain.ledgers import page_size, per_account
from shopstream_commerce.domain.limits import bounded
from shopstream_commerce.domain.money import commission
from shopstream_commerce.domain.records import LedgerRecord, OrderRecord
from shopstream_commerce.metrics import CommerceMetrics
from shopstream_commerce.settings import CommerceSettings
from shopstream_commerce.store import repository as repo
from shopstream_commerce.usecases.risk import RiskSignals
from shopstream_platform.db.database import Database
from shopstream_platform.db.outbox import Outbox
from shopstream_platform.errors import InvalidArgumentError, NotFoundError
from shopstream_platform.grpc.auth import Principal, ensure_acts_for
from shopstream_platform.ids import new_id
from shopstream_platform.paging import decode_cursor, encode_cursor

COMMISSIONS_TOPIC = "commerce.commissions.v1"
PENDING, AVAILABLE = cpb.LEDGER_ACCOUNT_PENDING, cpb.LEDGER_ACCOUNT_AVAILABLE
FROZEN = cpb.LEDGER_ACCOUNT_FROZEN


@dataclass(frozen=True)
class RateSet:
    rate_bps: int
    previous_bps: int
    effective_from: datetime
    # A cut: creators who keep their rate until `locked_until`.
    locked_creators: list[str]
    locked_until: datetime


def _now() -> datetime:
    return datetime.now(UTC)


class Commissions:
    def __init__(
        self,
        db: Database,
        outbox: Outbox,
        settings: CommerceSettings,
        metrics: CommerceMetrics,
        risk: RiskSignals,
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.settings = settings
        self.metrics = metrics
        self.risk = risk

    async def set_rate(
        self,
        principal: Principal,
        seller_id: str,
        product_id: str,
        rate_bps: int,
        creator_id: str = "",
        shop_ads: bool = False,
        require_approval: bool = False,
    ) -> RateSet:
        """Set the open, a targeted (`creator_id`) or the Shop Ads rate of a product; a cut locks
        the rate of creators who promoted it within `rate_cut_notice_s` and notifies them."""
        if not product_id:
            raise InvalidArgumentError("product_id", "is required")
        bounded("product_id", product_id, limits.ID)
        bounded("creator_id", creator_id, limits.ID)
        if creator_id and shop_ads:
            raise InvalidArgumentError("creator_id", "a Shop Ads rate is for every creator")
        if require_approval and (creator_id or shop_ads):
            raise InvalidArgumentError("require_approval", "is for the open rate only")
        if not 0 <= rate_bps <= self.settings.max_commission_bps:
            raise InvalidArgumentError("rate_bps", f"must be 0..{self.settings.max_commission_bps}")
        ensure_acts_for(principal, "seller", seller_id)
        now = _now()
        lock_for = timedelta(seconds=self.settings.rate_cut_notice_s)
        default = self.settings.default_commission_bps
        async with self.db.transaction() as session:
            await self._owned(session, principal, seller_id, product_id)
            changes = await repo.rate_changes(session, product_id)
            previous = scope_rate(changes, now, default, creator_id, shop_ads)
            change = RateChange(rate_bps, now, now, creator_id, shop_ads, require_approval)
            await repo.add_rate_change(session, seller_id, product_id, change)
            locked: list[RateLock] = []
            if rate_bps < previous and not shop_ads:
                promoted = await repo.promoting_creators(session, product_id, now - lock_for)
                for creator in promoted:
                    if creator_id and creator != creator_id:
                        continue
                    approved = await repo.creator_approved(session, product_id, creator)
                    had = affiliate_rate(changes, now, default, creator, approved)
                    after = affiliate_rate([*changes, change], now, default, creator, approved)
                    if rate_bps < had and after < had:
                        locked.append(RateLock(creator, had, now + lock_for))
            for lock in locked:
                await repo.lock_rate(session, product_id, lock, now)
                await self.outbox.add(
                    session,
                    COMMISSIONS_TOPIC,
                    lock.creator_id,
                    cpb.CommissionRateCutNotice(
                        seller_id=seller_id,
                        product_id=product_id,
                        creator_id=lock.creator_id,
                        rate_bps=rate_bps,
                        locked_rate_bps=lock.rate_bps,
                        locked_until=convert.timestamp(lock.until),
                    ),
                )
            await self.outbox.add(
                session,
                COMMISSIONS_TOPIC,
                product_id,
                cpb.CommissionRateSet(
                    seller_id=seller_id,
                    product_id=product_id,
                    rate_bps=rate_bps,
                    previous_rate_bps=previous,
                    effective_from=convert.timestamp(now),
                    creator_id=creator_id,
                    shop_ads=shop_ads,
                    require_approval=require_approval,
                ),
            )
        return RateSet(rate_bps, previous, now, [k.creator_id for k in locked], now + lock_for)

    async def _owned(
        self, session: AsyncSession, principal: Principal, seller_id: str, product_id: str
    ) -> None:
        """The product exists and is the caller's (acting as) seller's."""
        owner = await repo.product_seller(session, product_id)
        if owner is None:
            raise NotFoundError("product", product_id)
        ensure_acts_for(principal, "seller", owner)
        if owner != seller_id:
            raise InvalidArgumentError(
                "seller_id", f"product {product_id} belongs to another seller"
            )

    async def approve_creator(
        self, principal: Principal, seller_id: str, product_id: str, creator_id: str
    ) -> None:
        """The seller approves a creator for the product's open rate (idempotent); published as
        CollaborationApproved."""
        for name, value in (("product_id", product_id), ("creator_id", creator_id)):
            if not value:
                raise InvalidArgumentError(name, "is required")
            bounded(name, value, limits.ID)
        ensure_acts_for(principal, "seller", seller_id)
        now = _now()
        async with self.db.transaction() as session:
            await self._owned(session, principal, seller_id, product_id)
            if await repo.approve_creator(session, product_id, creator_id, now):
                await self.outbox.add(
                    session,
                    COMMISSIONS_TOPIC,
                    creator_id,
                    cpb.CollaborationApproved(
                        seller_id=seller_id,
                        product_id=product_id,
                        creator_id=creator_id,
                        approved_at=convert.timestamp(now),
                    ),
                )

    async def _book(self, session: AsyncSession, entry: LedgerRecord, cause: str) -> None:
        if await repo.insert_ledger(session, entry, cause):
            await self.outbox.add(
                session,
                COMMISSIONS_TOPIC,
                entry.creator_id,
                cpb.LedgerEntryRecorded(entry=convert.ledger_pb(entry)),
            )
            self.metrics.commissions.labels(cpb.LedgerEntryKind.Name(entry.kind)).inc()  # type: ignore[arg-type]

    def _entry(
        self,
        order: OrderRecord,
        line_id: str,
        creator: str,
        kind: int,
        account: int,
        amount: int,
        bps: int,
        product: str,
    ) -> LedgerRecord:
        return LedgerRecord(
            entry_id=new_id("led"),
            creator_id=creator,
            kind=kind,
            account=account,
            amount_minor=amount,
            currency=order.currency,
            order_id=order.order_id,
            line_id=line_id,
            product_id=product,
            rate_bps=bps,
            created_at=_now(),
        )

    async def accrue(self, session: AsyncSession, order: OrderRecord) -> int:
        """On payment: commission on every creator-attributed line, into the pending account.
        Returns the order's commission (what its seller pays the creators)."""
        total = 0
        for line in order.lines:
            creator = line.attribution.creator_id
            if not creator or line.commission_bps <= 0:
                continue
            amount = commission(line.total_minor, line.commission_bps)
            total += amount
            entry = self._entry(
                order,
                line.line_id,
                creator,
                cpb.LEDGER_ENTRY_KIND_ACCRUAL,
                PENDING,
                amount,
                line.commission_bps,
                line.product_id,
            )
            await self._book(session, entry, f"accrual:{order.order_id}:{line.line_id}")
        return total

    async def reverse(
        self, session: AsyncSession, order: OrderRecord, refund_id: str, amounts: dict[str, int]
    ) -> int:
        """On a refund: take back the commission on the refunded amount of attributed lines.
        Returns what was taken back (given back to the order's seller)."""
        taken = 0
        settled = await self._settled_creators(session, order.order_id)
        for line in order.lines:
            creator = line.attribution.creator_id
            if line.line_id not in amounts or not creator or line.commission_bps <= 0:
                continue
            amount = -commission(amounts[line.line_id], line.commission_bps)
            if amount == 0:
                continue
            taken -= amount
            account = AVAILABLE if creator in settled else PENDING
            entry = self._entry(
                order,
                line.line_id,
                creator,
                cpb.LEDGER_ENTRY_KIND_REVERSAL,
                account,
                amount,
                line.commission_bps,
                line.product_id,
            )
            await self._book(session, entry, f"reversal:{refund_id}:{line.line_id}")
        return taken

    async def _settled_creators(self, session: AsyncSession, order_id: str) -> set[str]:
        return {
            e.creator_id
            for e in await repo.ledger_for_order(session, order_id)
            if e.kind == cpb.LEDGER_ENTRY_KIND_SETTLEMENT_IN
        }

    async def settle(self, session: AsyncSession, order: OrderRecord) -> None:
        """At the order's completion (after-sales window closed): its pending commission moves
        to available, once per order, in the caller's transaction; what a risk signal covers
        (domain/risk.py) moves to the frozen account instead and is not paid out."""
        if not await repo.mark_settled(session, order.order_id):
            return
        pending: dict[tuple[str, str], int] = defaultdict(int)
        for entry in await repo.ledger_for_order(session, order.order_id):
            if entry.account == PENDING:
                pending[entry.creator_id, entry.line_id] += entry.amount_minor
        clicks = {line.line_id: line.attribution.ad_click_id for line in order.lines}
        payable: dict[str, int] = defaultdict(int)
        oid = order.order_id
        for (creator, line_id), amount in sorted(pending.items()):
            if amount == 0:
                continue
            reason = await self.risk.freeze_reason(session, creator, clicks.get(line_id, ""))
            if not reason:
                payable[creator] += amount
                continue
            out = self._entry(
                order,
                line_id,
                creator,
                cpb.LEDGER_ENTRY_KIND_SETTLEMENT_OUT,
                PENDING,
                -amount,
                0,
                "",
            )
            held = replace(
                self._entry(
                    order, line_id, creator, cpb.LEDGER_ENTRY_KIND_FROZEN, FROZEN, amount, 0, ""
                ),
                frozen_reason=reason[:200],
            )
            await self._book(session, out, f"freeze-out:{oid}:{creator}:{line_id}")
            await self._book(session, held, f"freeze:{oid}:{creator}:{line_id}")
            self.metrics.frozen_commissions.labels(order.currency).inc(amount)
        for creator, amount in sorted(payable.items()):
            if amount == 0:
                continue
            out = self._entry(
                order, "", creator, cpb.LEDGER_ENTRY_KIND_SETTLEMENT_OUT, PENDING, -amount, 0, ""
            )
            into = self._entry(
                order, "", creator, cpb.LEDGER_ENTRY_KIND_SETTLEMENT_IN, AVAILABLE, amount, 0, ""
            )
            await self._book(session, out, f"settle-out:{oid}:{creator}")
            await self._book(session, into, f"settle-in:{oid}:{creator}")

    async def earnings(
        self, principal: Principal, creator_id: str, size: int, token: str
    ) -> tuple[dict[int, int], str, list[LedgerRecord], str]:
        """(balance per account, currency, entries newest first, next page token)."""
        if not creator_id:
            raise InvalidArgumentError("creator_id", "is required")
        bounded("creator_id", creator_id, limits.ID)
        ensure_acts_for(principal, "creator", creator_id)
        settings = self.settings
        size = page_size(size, settings.list_default_page_size, settings.list_max_page_size)
        async with self.db.read() as session:
            sums = await repo.balances(session, creator_id)
            entries = await repo.ledger_page(session, creator_id, decode_cursor(token), size + 1)
        by_account, currency = per_account(sums, "creator_id")
        next_token = encode_cursor(entries[size - 1].entry_id) if len(entries) > size else ""
        return by_account, currency, entries[:size], next_token
