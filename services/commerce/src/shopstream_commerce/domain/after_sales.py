"""After-sales requests (TikTok Shop's return types) and the steps that move them (pure).

    REFUND, CANCEL:     REQUESTED ─approve─▶ APPROVED (refunded)      REQUESTED ─reject─▶ REJECTED
    RETURN_AND_REFUND:  REQUESTED ─approve─▶ AWAITING_BUYER_SHIPMENT ─ship_return─▶ BUYER_SHIPPED
                        BUYER_SHIPPED ─receive─▶ APPROVED (refunded) | ─reject─▶ REJECTED
    REFUND, RETURN:     REJECTED ─escalate─▶ ESCALATED ─arbitrate_refund─▶ APPROVED (refunded)
                                                       ─arbitrate_reject─▶ CLOSED

A REQUESTED request the seller leaves unanswered past its deadline is approved by the platform
(the seller's `approve` step, taken for them), as TikTok Shop does.

Numbers equal shopstream.commerce.v1.AfterSaleType and RefundState.
"""

from __future__ import annotations

import enum
from datetime import datetime

from shopstream_platform.errors import FailedPreconditionError


class AfterSaleType(enum.IntEnum):
    REFUND = 1
    RETURN_AND_REFUND = 2
    CANCEL = 3


class RequestState(enum.IntEnum):
    REQUESTED = 1
    APPROVED = 2
    REJECTED = 3
    AWAITING_BUYER_SHIPMENT = 4
    BUYER_SHIPPED = 5
    ESCALATED = 6
    CLOSED = 7


class Step(enum.Enum):
    APPROVE = "approve"
    REJECT = "reject"
    SHIP_RETURN = "ship the return of"
    RECEIVE = "receive the return of"
    ESCALATE = "escalate"
    ARBITRATE_REFUND = "arbitrate (refund)"
    ARBITRATE_REJECT = "arbitrate (reject)"


T, R = AfterSaleType, RequestState
ALL = frozenset(AfterSaleType)
RETURNS_OR_REFUNDS = frozenset({T.REFUND, T.RETURN_AND_REFUND})

# step → (types it applies to, state it starts from) → state it leads to
_MOVES: dict[Step, dict[tuple[frozenset[AfterSaleType], RequestState], RequestState]] = {
    Step.APPROVE: {
        (frozenset({T.REFUND, T.CANCEL}), R.REQUESTED): R.APPROVED,
        (frozenset({T.RETURN_AND_REFUND}), R.REQUESTED): R.AWAITING_BUYER_SHIPMENT,
    },
    Step.REJECT: {
        (ALL, R.REQUESTED): R.REJECTED,
        (frozenset({T.RETURN_AND_REFUND}), R.BUYER_SHIPPED): R.REJECTED,
    },
    Step.SHIP_RETURN: {
        (frozenset({T.RETURN_AND_REFUND}), R.AWAITING_BUYER_SHIPMENT): R.BUYER_SHIPPED
    },
    Step.RECEIVE: {(frozenset({T.RETURN_AND_REFUND}), R.BUYER_SHIPPED): R.APPROVED},
    Step.ESCALATE: {(RETURNS_OR_REFUNDS, R.REJECTED): R.ESCALATED},
    Step.ARBITRATE_REFUND: {(RETURNS_OR_REFUNDS, R.ESCALATED): R.APPROVED},
    Step.ARBITRATE_REJECT: {(RETURNS_OR_REFUNDS, R.ESCALATED): R.CLOSED},
}

# Requests that still claim their units (no second request for them) and keep the order from
# completing. A REJECTED one may still be escalated until the order completes (then CLOSED).
OPEN = frozenset({R.REQUESTED, R.AWAITING_BUYER_SHIPMENT, R.BUYER_SHIPPED, R.REJECTED, R.ESCALATED})
# Open requests that hold completion back (a REJECTED one is closed by it instead).
BLOCKS_COMPLETION = OPEN - {R.REJECTED}


def move(step: Step, kind: AfterSaleType, current: RequestState, request_id: str) -> RequestState:
    """The state `step` leads a request of `kind` to; FAILED_PRECONDITION when not allowed."""
    for (kinds, start), target in _MOVES[step].items():
        if kind in kinds and current == start:
            return target
    if current == R.APPROVED:
        # Also the answer to a retried approval whose first attempt went through.
        raise FailedPreconditionError(f"refund {request_id} is already approved")
    raise FailedPreconditionError(
        f"cannot {step.value} {kind.name} request {request_id} in state {current.name}"
    )


def auto_approval_due(state: RequestState, respond_by: datetime | None, now: datetime) -> bool:
    """Whether the platform approves the request now: still waiting for the seller's answer
    and past the deadline (requests without one, from before deadlines existed, never)."""
    return state == R.REQUESTED and respond_by is not None and respond_by <= now


def pays(target: RequestState) -> bool:
    """Reaching APPROVED is when the money goes back."""
    return target == R.APPROVED
