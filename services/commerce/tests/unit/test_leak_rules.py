"""The day-end check's rules: which holds are leaks, and that a hold only moves forward."""

from datetime import UTC, datetime, timedelta

from shopstream_commerce.domain import leaks
from shopstream_commerce.domain.leaks import Reservation
from shopstream_commerce.domain.orders import OrderState

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


def test_held_stock_of_an_ended_order_is_a_leak_only_after_the_grace() -> None:
    cutoff = NOW - timedelta(seconds=60)
    for state in (
        OrderState.CANCELLED,
        OrderState.EXPIRED,
        OrderState.REJECTED,
        OrderState.REFUNDED,
        OrderState.SHIPPED,
        OrderState.DELIVERED,
    ):
        assert leaks.is_leak(Reservation.HELD, state, cutoff, cutoff)
        assert not leaks.is_leak(Reservation.HELD, state, NOW, cutoff)
    for state in leaks.SHIPPABLE:
        assert not leaks.is_leak(Reservation.HELD, state, cutoff, cutoff)
    for reservation in (Reservation.NONE, Reservation.RELEASED, Reservation.COMMITTED):
        assert not leaks.is_leak(reservation, OrderState.CANCELLED, cutoff, cutoff)


def test_a_hold_only_moves_forward() -> None:
    assert leaks.held(Reservation.NONE) == Reservation.HELD
    assert leaks.held(Reservation.RELEASED) == Reservation.RELEASED  # a late answer
    assert leaks.ended(Reservation.HELD, committed=True) == Reservation.COMMITTED
    assert leaks.ended(Reservation.HELD, committed=False) == Reservation.RELEASED
    assert leaks.ended(Reservation.COMMITTED, committed=False) == Reservation.COMMITTED
