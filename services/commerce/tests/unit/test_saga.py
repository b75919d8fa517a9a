import pytest

from shopstream_commerce.domain.orders import OrderState, can, refund_state, transition
from shopstream_platform.errors import FailedPreconditionError

S = OrderState


@pytest.mark.parametrize(
    ("action", "start", "end"),
    [
        ("reserve", S.PLACED, S.RESERVED),
        ("reject", S.PLACED, S.REJECTED),
        ("pay", S.RESERVED, S.PAID),
        ("cancel", S.PLACED, S.CANCELLED),
        ("cancel", S.RESERVED, S.CANCELLED),
        ("expire", S.RESERVED, S.EXPIRED),
        ("ship", S.PAID, S.SHIPPED),
        ("deliver", S.SHIPPED, S.DELIVERED),
    ],
)
def test_allowed_transitions(action: str, start: OrderState, end: OrderState) -> None:
    assert transition(action, start, "o1") == end


@pytest.mark.parametrize(
    ("action", "start"),
    [
        ("pay", S.PLACED),
        ("cancel", S.PAID),
        ("ship", S.RESERVED),
        ("deliver", S.PAID),
        ("expire", S.PAID),
    ],
)
def test_invalid_transitions_are_failed_preconditions(action: str, start: OrderState) -> None:
    with pytest.raises(FailedPreconditionError, match=start.name):
        transition(action, start, "o1")
    assert not can(action, start)


def test_refund_state() -> None:
    assert refund_state([2, 1], [2, 1]) == S.REFUNDED
    assert refund_state([2, 1], [1, 0]) == S.PARTIALLY_REFUNDED
