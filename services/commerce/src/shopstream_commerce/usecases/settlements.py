"""Seller settlements: the sellers' append-only ledger and one order's breakdown.

Paid: SALE (+total), PLATFORM_FEE (-`platform_fee_bps` of it) and CREATOR_COMMISSION (-what the
creators accrued), pending. An approved refund: REFUND (-amount), PLATFORM_FEE_RETURNED and
CREATOR_COMMISSION_RETURNED (what the refund gave back). Completed (after-sales window closed):
SETTLEMENT_OUT/IN move the order's net from pending to available, the payout. Every entry is
booked once per cause key in the transaction of its cause and published on
commerce.seller-ledger.v1; a seller's balance is by construction the sum of their entries.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream.catalog.v1 import events_pb2 as catalog_events
from shopstream.commerce.v1 import commissions_pb2 as cpb
from shopstream_commerce import convert
from shopstream_commerce.access import ensure_can_see
from shopstream_commerce.domain import limits
from shopstream_commerce.domain import settlements as money
from shopstream_commerce.domain.ledgers import page_size, per_account
from shopstream_commerce.domain.limits import bounded
from shopstream_commerce.domain.orders import OrderState
from shopstream_commerce.domain.records import OrderRecord
from shopstream_commerce.domain.settlements import Breakdown, EntryKind, SellerEntry
from shopstream_commerce.store import settlements as store
from shopstream_commerce.usecases.context import Deps
from shopstream_commerce.usecases.transitions import OrderTransitions
from shopstream_platform.errors import InvalidArgumentError
from shopstream_platform.grpc.auth import Principal, ensure_acts_for
from shopstream_platform.ids import new_id
from shopstream_platform.kafka.events import Event, InvalidEventError
from shopstream_platform.paging import decode_cursor, encode_cursor

SELLER_LEDGER_TOPIC = "commerce.seller-ledger.v1"
# One storage charge can never be more than this (10^13 minor units): a bad event is refused.
MAX_STORAGE_FEE = 10**13
PENDING, AVAILABLE = cpb.LEDGER_ACCOUNT_PENDING, cpb.LEDGER_ACCOUNT_AVAILABLE


class SellerLedger:
    def __init__(self, deps: Deps, transitions: OrderTransitions) -> None:
        self.deps = deps
        self.transitions = transitions

    async def _book(
        self,
        session: AsyncSession,
        order: OrderRecord,
        kind: EntryKind,
        account: int,
        amount: int,
        cause: str,
        refund_id: str = "",
    ) -> None:
        await self._book_for(
            session,
            order.seller_id,
            order.order_id,
            order.currency,
            kind,
            account,
            amount,
            cause,
            refund_id,
        )

    async def _book_for(
        self,
        session: AsyncSession,
        seller_id: str,
        order_id: str,
        currency: str,
        kind: EntryKind,
        account: int,
        amount: int,
        cause: str,
        refund_id: str = "",
    ) -> None:
        entry = SellerEntry(
            entry_id=new_id("sle"),
            seller_id=seller_id,
            order_id=order_id,
            kind=kind,
            account=account,
            amount_minor=amount,
            currency=currency,
            refund_id=refund_id,
            created_at=self.deps.now(),
        )
        if await store.insert(session, entry, cause):
            await self.deps.outbox.add(
                session,
                SELLER_LEDGER_TOPIC,
                seller_id,
                cpb.SellerLedgerEntryRecorded(entry=convert.seller_entry_pb(entry)),
            )
            self.deps.metrics.seller_entries.labels(kind.name).inc()

    async def on_storage_charged(self, event: Event[Message], session: AsyncSession) -> None:
        """catalog.fulfilment.v1 StorageCharged: the fee for units stored in platform
        warehouses, taken from the seller's available money (not tied to an order); once per
        charge id."""
        message = event.message
        if not isinstance(message, catalog_events.StorageCharged):
            raise InvalidEventError(f"unexpected {type(message).__name__}")
        if not message.charge_id or not message.seller_id:
            raise InvalidEventError("charge_id and seller_id are required")
        bounded("seller_id", message.seller_id, limits.ID)
        amount = message.amount.amount_minor
        if not 0 < amount <= MAX_STORAGE_FEE or len(message.amount.currency) != 3:
            raise InvalidEventError(f"storage charge {message.charge_id}: amount out of range")
        await self._book_for(
            session,
            message.seller_id,
            "",
            message.amount.currency,
            EntryKind.STORAGE_FEE,
            AVAILABLE,
            -amount,
            f"storage:{message.charge_id}",
        )

    async def on_paid(self, session: AsyncSession, order: OrderRecord, commission: int) -> None:
        """In the PAID transaction: the sale, the platform's fee, the creators' commission."""
        oid = order.order_id
        fee = money.platform_fee(order.total_minor, self.deps.settings.platform_fee_bps)
        await self._book(session, order, EntryKind.SALE, PENDING, order.total_minor, f"sale:{oid}")
        await self._book(session, order, EntryKind.PLATFORM_FEE, PENDING, -fee, f"fee:{oid}")
        if commission:
            await self._book(
                session,
                order,
                EntryKind.CREATOR_COMMISSION,
                PENDING,
                -commission,
                f"commission:{oid}",
            )

    async def on_fulfilled(
        self, session: AsyncSession, order: OrderRecord, package_id: str, fee: int
    ) -> None:
        """In the transaction that ships a platform-fulfilled package: the platform's fee."""
        account = AVAILABLE if order.state == OrderState.COMPLETED else PENDING
        await self._book(
            session, order, EntryKind.FULFILMENT_FEE, account, -fee, f"fulfilment:{package_id}"
        )

    async def on_refund(
        self,
        session: AsyncSession,
        order: OrderRecord,
        refund_id: str,
        amount: int,
        commission_returned: int,
    ) -> None:
        """In the approving transaction: the refund and what it gives back to the seller."""
        entries = await store.of_order(session, order.order_id)
        if any(e.kind == EntryKind.REFUND and e.refund_id == refund_id for e in entries):
            return  # booked already (a replay)
        account = AVAILABLE if money.breakdown(entries).settled_at is not None else PENDING
        before = money.breakdown(entries)
        fee = -sum(e.amount_minor for e in entries if e.kind == EntryKind.PLATFORM_FEE)
        back = money.fee_returned(fee, before.paid, before.refunds, amount)
        await self._book(
            session, order, EntryKind.REFUND, account, -amount, f"refund:{refund_id}", refund_id
        )
        if back:
            await self._book(
                session,
                order,
                EntryKind.PLATFORM_FEE_RETURNED,
                account,
                back,
                f"fee-back:{refund_id}",
                refund_id,
            )
        if commission_returned:
            await self._book(
                session,
                order,
                EntryKind.CREATOR_COMMISSION_RETURNED,
                account,
                commission_returned,
                f"commission-back:{refund_id}",
                refund_id,
            )

    async def settle(self, session: AsyncSession, order: OrderRecord) -> None:
        """At completion: the order's pending net moves to available (the payout)."""
        pending = sum(
            e.amount_minor
            for e in await store.of_order(session, order.order_id)
            if e.account == PENDING
        )
        oid = order.order_id
        await self._book(
            session, order, EntryKind.SETTLEMENT_OUT, PENDING, -pending, f"settle-out:{oid}"
        )
        await self._book(
            session, order, EntryKind.SETTLEMENT_IN, AVAILABLE, pending, f"settle-in:{oid}"
        )

    async def order_settlement(
        self, principal: Principal, order_id: str
    ) -> tuple[OrderRecord, Breakdown, datetime | None]:
        """The order, its breakdown and its settlement date (when it settled, or when its
        window closes once delivered)."""
        async with self.deps.db.read() as session:
            order = await self.transitions.load(session, order_id)
            ensure_can_see(principal, order)
            found = money.breakdown(await store.of_order(session, order_id))
        date = found.settled_at
        if date is None and order.delivered_at is not None:
            date = order.delivered_at + timedelta(seconds=self.deps.settings.return_window_s)
        return order, found, date

    async def balance(
        self, principal: Principal, seller_id: str, size: int, token: str
    ) -> tuple[dict[int, int], str, list[SellerEntry], str]:
        """(balance per account, currency, entries newest first, next page token)."""
        if not seller_id:
            raise InvalidArgumentError("seller_id", "is required")
        bounded("seller_id", seller_id, limits.ID)
        ensure_acts_for(principal, "seller", seller_id)
        settings = self.deps.settings
        size = page_size(size, settings.list_default_page_size, settings.list_max_page_size)
        async with self.deps.db.read() as session:
            sums = await store.balances(session, seller_id)
            entries = await store.page(session, seller_id, decode_cursor(token), size + 1)
        by_account, currency = per_account(sums, "seller_id")
        next_token = encode_cursor(entries[size - 1].entry_id) if len(entries) > size else ""
        return by_account, currency, entries[:size], next_token
