"""Seller settlements (pure): the platform fee, what a refund gives back, and one order's
breakdown from its ledger entries.

An order's entries: SALE (+total) with PLATFORM_FEE and CREATOR_COMMISSION when it is paid;
REFUND with PLATFORM_FEE_RETURNED and CREATOR_COMMISSION_RETURNED per approved refund;
SETTLEMENT_OUT/IN moving its net from pending to available when it completes. So its net payout
is paid - platform fee - creator commission - refunds, each net of what refunds gave back.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from shopstream_commerce.domain.money import commission


class EntryKind(enum.IntEnum):
    """Numbers equal shopstream.commerce.v1.SellerEntryKind."""

    SALE = 1
    PLATFORM_FEE = 2
    CREATOR_COMMISSION = 3
    REFUND = 4
    PLATFORM_FEE_RETURNED = 5
    CREATOR_COMMISSION_RETURNED = 6
    SETTLEMENT_OUT = 7
    SETTLEMENT_IN = 8
    FULFILMENT_FEE = 9
    STORAGE_FEE = 10


def platform_fee(total_minor: int, fee_bps: int) -> int:
    """The platform's fee on an order's paid total, rounded down."""
    return commission(total_minor, fee_bps)


def fee_returned(fee_minor: int, total_minor: int, refunded_before: int, refunded_now: int) -> int:
    """The fee given back for `refunded_now`, counted on the order's cumulative refunds so that
    refunding everything gives back exactly the whole fee (no rounding left over)."""
    if total_minor <= 0:
        return 0
    after = min(refunded_before + refunded_now, total_minor)
    before = min(refunded_before, total_minor)
    return fee_minor * after // total_minor - fee_minor * before // total_minor


@dataclass(frozen=True)
class SellerEntry:
    entry_id: str
    seller_id: str
    order_id: str
    kind: EntryKind
    account: int  # shopstream.commerce.v1.LedgerAccount
    amount_minor: int
    currency: str
    refund_id: str
    created_at: datetime


@dataclass(frozen=True)
class Breakdown:
    """One order's money for its seller, from its entries (amounts as positive magnitudes)."""

    paid: int = 0
    platform_fee: int = 0
    creator_commission: int = 0
    refunds: int = 0
    net_payout: int = 0
    settled_at: datetime | None = None
    fulfilment_fee: int = 0


def breakdown(entries: Iterable[SellerEntry]) -> Breakdown:
    paid = fee = creator = refunds = net = fulfilment = 0
    settled_at: datetime | None = None
    for e in entries:
        if e.kind == EntryKind.SALE:
            paid += e.amount_minor
        elif e.kind in (EntryKind.PLATFORM_FEE, EntryKind.PLATFORM_FEE_RETURNED):
            fee -= e.amount_minor
        elif e.kind in (EntryKind.CREATOR_COMMISSION, EntryKind.CREATOR_COMMISSION_RETURNED):
            creator -= e.amount_minor
        elif e.kind == EntryKind.REFUND:
            refunds -= e.amount_minor
        elif e.kind == EntryKind.FULFILMENT_FEE:
            fulfilment -= e.amount_minor
        elif e.kind == EntryKind.SETTLEMENT_IN:
            settled_at = e.created_at
        if e.kind not in (EntryKind.SETTLEMENT_OUT, EntryKind.SETTLEMENT_IN):
            net += e.amount_minor
    return Breakdown(paid, fee, creator, refunds, net, settled_at, fulfilment)
