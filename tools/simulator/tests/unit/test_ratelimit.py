"""The token bucket: bursts up to its capacity pass, the long-run rate never exceeds the limit."""

from __future__ import annotations

import asyncio

import pytest

from shopstream_simulator.ratelimit import TokenBucket, Unlimited


class FakeClock:
    """Time that moves only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def test_a_burst_up_to_the_capacity_passes_at_once() -> None:
    clock = FakeClock()
    bucket = TokenBucket(5.0, 10.0, clock=clock, sleep=clock.sleep)
    assert all(bucket.try_take() for _ in range(10))
    assert not bucket.try_take()
    assert bucket.wait_time() == pytest.approx(0.2)


def test_tokens_refill_at_the_rate_but_never_past_the_capacity() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2.0, 4.0, clock=clock, sleep=clock.sleep)
    for _ in range(4):
        bucket.try_take()
    clock.now += 1.0
    assert sum(bucket.try_take() for _ in range(10)) == 2
    clock.now += 100.0
    assert sum(bucket.try_take() for _ in range(10)) == 4


async def test_a_flood_is_held_to_capacity_plus_rate_times_time() -> None:
    clock = FakeClock()
    bucket = TokenBucket(3.0, 3.0, clock=clock, sleep=clock.sleep)
    taken_at: list[float] = []

    async def order() -> None:
        await bucket.take()
        taken_at.append(clock.now)

    await asyncio.gather(*(order() for _ in range(60)))
    assert len(taken_at) == 60
    # Over every window [0, T], at most capacity + rate x T went through.
    for t in taken_at:
        assert sum(1 for x in taken_at if x <= t) <= 3.0 + 3.0 * t + 1e-9
    # And it did not wait longer than needed: 57 tokens beyond the burst at 3/s.
    assert max(taken_at) == pytest.approx(57 / 3.0, rel=0.01)


async def test_bursty_arrivals_pass_in_order_and_average_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10.0, 10.0, clock=clock, sleep=clock.sleep)
    order: list[int] = []

    async def one(i: int) -> None:
        await bucket.take()
        order.append(i)

    for wave in range(5):
        await asyncio.gather(*(one(wave * 100 + i) for i in range(100)))
        clock.now += 1.0
    assert order == sorted(order)
    rate = len(order) / clock.now
    assert rate <= 10.0 + 10.0 / clock.now


def test_invalid_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0.0, 1.0)
    with pytest.raises(ValueError):
        TokenBucket(1.0, 0.5)


async def test_unlimited_never_waits() -> None:
    assert await Unlimited().take() == 0.0 and Unlimited().try_take()
