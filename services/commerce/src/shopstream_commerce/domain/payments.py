"""The payment intent's states: what a provider's answer makes of an intent, and which states
still hold the order (one live intent per order, so an order is never charged twice).

An intent is committed OPEN before the provider is called. The provider's answer (or, after a
crash or time-out, the provider's record asked by idempotency key) completes it:

    OPEN ──charged, order payable──────────▶ SUCCEEDED
    OPEN ──charged, order expired/cancelled─▶ REFUND_DUE ──refunded at the provider──▶ REFUNDED
    OPEN ──declined─────────────────────────▶ DECLINED       (order payable again)
    OPEN ──provider cancelled the intent────▶ NOT_CHARGED    (order payable again)
    OPEN ──no charge found (yet)────────────▶ OPEN           (cancel it at the provider first)
    OPEN ──no answer (time-out, crash)──────▶ OPEN           (the sweeper asks again later)

"No charge found" is never final: a request stuck in the provider's network may still charge
after `retrieve` said so. Only the provider's confirmed cancel of the intent under its key (no
request can charge it afterwards) frees the order; a cancel that finds a charge answers CHARGED.
"""

from __future__ import annotations

import enum

from shopstream_platform.errors import FailedPreconditionError


class IntentState(enum.IntEnum):
    OPEN = 1
    SUCCEEDED = 2
    DECLINED = 3
    NOT_CHARGED = 4
    REFUND_DUE = 5
    REFUNDED = 6


class Answer(enum.Enum):
    """What the provider said about the charge under the intent's key."""

    CHARGED = "charged"
    DECLINED = "declined"
    CANCELLED = "cancelled"  # nothing charged, and nothing can be any more
    UNKNOWN = "unknown"


S = IntentState

# States that keep the order's one intent slot: while an intent is OPEN nobody may start another
# charge; after SUCCEEDED the order is paid. DECLINED and NOT_CHARGED free it for a new attempt.
HOLDS_ORDER = frozenset({S.OPEN, S.SUCCEEDED, S.REFUND_DUE, S.REFUNDED})
FINAL = frozenset({S.SUCCEEDED, S.DECLINED, S.NOT_CHARGED, S.REFUNDED})


def complete(current: IntentState, answer: Answer, order_payable: bool) -> IntentState:
    """The state an OPEN intent moves to on the provider's answer."""
    if current != S.OPEN:
        raise FailedPreconditionError(f"payment intent is already {current.name}")
    if answer == Answer.CHARGED:
        return S.SUCCEEDED if order_payable else S.REFUND_DUE
    if answer == Answer.DECLINED:
        return S.DECLINED
    if answer == Answer.CANCELLED:
        return S.NOT_CHARGED
    return S.OPEN


def refunded(current: IntentState) -> IntentState:
    """A REFUND_DUE intent once the provider gave the money back."""
    if current != S.REFUND_DUE:
        raise FailedPreconditionError(f"payment intent is {current.name}, not REFUND_DUE")
    return S.REFUNDED


def holds_order(state: IntentState) -> bool:
    return state in HOLDS_ORDER
