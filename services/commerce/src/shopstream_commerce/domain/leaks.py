"""The day-end check's rules (pure): which reservations, payment intents and provider refunds are
still open when they should not be.

Commerce follows each order's reservation in catalog from catalog.stock.v1 (held on
StockReserved, ended on a whole StockReleased or on StockCommitted). A reservation still held
`grace` after its order reached a state that will never ship, or shipped, is a leak: units no one
can buy. An intent still OPEN well past the sweeper's resolve time, a refund the provider has not
confirmed past the grace, and any refund the provider refused break the money invariant until a
person looks.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from shopstream_commerce.domain.orders import OrderState


class Reservation(enum.IntEnum):
    """Catalog's hold on an order's stock, as commerce last heard of it."""

    NONE = 0
    HELD = 1
    RELEASED = 2
    COMMITTED = 3


# States in which the order may still ship, so its held stock is still needed.
SHIPPABLE = frozenset(
    {
        OrderState.PLACED,
        OrderState.RESERVED,
        OrderState.PAID,
        OrderState.PARTIALLY_REFUNDED,
        # Some packages still wait in their warehouses: catalog commits when the last ships.
        OrderState.PARTIALLY_SHIPPED,
    }
)
# Every other state ends the need for held stock (SHIPPED: catalog commits it).
ENDED = frozenset(OrderState) - SHIPPABLE


def held(current: Reservation) -> Reservation:
    """StockReserved: a hold begins once (a late or replayed answer changes nothing after it ended)."""
    return Reservation.HELD if current == Reservation.NONE else current


def ended(current: Reservation, committed: bool) -> Reservation:
    """A whole StockReleased or a StockCommitted ends the hold."""
    if current in (Reservation.RELEASED, Reservation.COMMITTED):
        return current
    return Reservation.COMMITTED if committed else Reservation.RELEASED


def is_leak(reservation: Reservation, state: OrderState, since: datetime, cutoff: datetime) -> bool:
    """Held stock of an order that ended at or before `cutoff` (now minus the grace)."""
    return reservation == Reservation.HELD and state in ENDED and since <= cutoff


@dataclass(frozen=True)
class HeldStock:
    order_id: str
    state: OrderState
    since: datetime


@dataclass(frozen=True)
class OpenIntent:
    intent_id: str
    order_id: str
    amount_minor: int
    currency: str
    opened_at: datetime
    checks: int


@dataclass(frozen=True)
class UnconfirmedRefund:
    refund_key: str
    order_id: str
    amount_minor: int
    currency: str
    refused: bool
    message: str
    queued_at: datetime


@dataclass(frozen=True)
class LeakReport:
    checked_at: datetime
    reservations: list[HeldStock] = field(default_factory=list)
    intents: list[OpenIntent] = field(default_factory=list)
    refunds: list[UnconfirmedRefund] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.reservations or self.intents or self.refunds)
