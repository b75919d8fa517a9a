"""The order saga's states and the transitions each action may make."""

from __future__ import annotations

import enum

from shopstream_platform.errors import FailedPreconditionError


class OrderState(enum.IntEnum):
    """Numbers equal shopstream.commerce.v1.OrderState."""

    PLACED = 1
    RESERVED = 2
    REJECTED = 3
    PAID = 4
    SHIPPED = 5
    DELIVERED = 6
    CANCELLED = 7
    EXPIRED = 8
    REFUNDED = 9
    PARTIALLY_REFUNDED = 10
    COMPLETED = 11
    PARTIALLY_SHIPPED = 12
    IN_TRANSIT = 13


S = OrderState

# action → states it may start from → the state it leads to (None: computed by the action)
TRANSITIONS: dict[str, tuple[frozenset[OrderState], OrderState | None]] = {
    "reserve": (frozenset({S.PLACED}), S.RESERVED),
    "reject": (frozenset({S.PLACED}), S.REJECTED),
    "pay": (frozenset({S.RESERVED}), S.PAID),
    "cancel": (frozenset({S.PLACED, S.RESERVED}), S.CANCELLED),
    "expire": (frozenset({S.RESERVED}), S.EXPIRED),
    # Packages (domain/packages.py): some shipped, all shipped, one scanned on its way, all
    # delivered.
    "ship_partly": (frozenset({S.PAID, S.PARTIALLY_REFUNDED}), S.PARTIALLY_SHIPPED),
    "ship": (frozenset({S.PAID, S.PARTIALLY_REFUNDED, S.PARTIALLY_SHIPPED}), S.SHIPPED),
    "in_transit": (frozenset({S.SHIPPED}), S.IN_TRANSIT),
    "deliver": (frozenset({S.SHIPPED, S.IN_TRANSIT}), S.DELIVERED),
    "request_refund": (
        frozenset(
            {S.PAID, S.PARTIALLY_SHIPPED, S.SHIPPED, S.IN_TRANSIT, S.DELIVERED}
            | {S.PARTIALLY_REFUNDED}
        ),
        None,
    ),
    "refund": (
        frozenset(
            {S.PAID, S.PARTIALLY_SHIPPED, S.SHIPPED, S.IN_TRANSIT, S.DELIVERED}
            | {S.PARTIALLY_REFUNDED}
        ),
        None,
    ),
    # A paid order cancelled before it shipped (the seller approved the buyer's request; the
    # use case checks it has not shipped: PARTIALLY_REFUNDED is also reached after delivery).
    "cancel_paid": (frozenset({S.PAID, S.PARTIALLY_REFUNDED}), S.CANCELLED),
    # The after-sales window closed after delivery with no request open.
    "complete": (frozenset({S.DELIVERED, S.PARTIALLY_REFUNDED}), S.COMPLETED),
}


def transition(action: str, current: OrderState, order_id: str) -> OrderState | None:
    """The state `action` leads to from `current`; FAILED_PRECONDITION when not allowed."""
    allowed, target = TRANSITIONS[action]
    if current not in allowed:
        names = ", ".join(sorted(s.name for s in allowed))
        raise FailedPreconditionError(
            f"cannot {action.replace('_', ' ')} order {order_id} in state {current.name} (needs {names})"
        )
    return target


def can(action: str, current: OrderState) -> bool:
    return current in TRANSITIONS[action][0]


def refund_state(quantities: list[int], refunded: list[int]) -> OrderState:
    """REFUNDED once every unit is refunded, else PARTIALLY_REFUNDED."""
    return (
        S.REFUNDED
        if all(r >= q for q, r in zip(quantities, refunded, strict=True))
        else S.PARTIALLY_REFUNDED
    )
