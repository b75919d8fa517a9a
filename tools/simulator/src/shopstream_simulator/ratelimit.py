"""A token bucket: bursts pass up to its capacity, the long-run rate never exceeds the configured one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

EPSILON = 1e-9


class TokenBucket:
    """`rate` tokens per second, at most `capacity` saved up.

    Over any interval of T seconds at most `capacity + rate x T` tokens are taken. Waiters are
    served in arrival order (one lock), so a burst queues rather than overtaking itself.
    """

    def __init__(
        self,
        rate: float,
        capacity: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("rate must be positive and capacity at least 1")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._sleep = sleep
        self._tokens = capacity
        self._updated = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def try_take(self, tokens: float = 1.0) -> bool:
        self._refill()
        # The tolerance absorbs float rounding: after sleeping exactly the computed wait, the
        # refill may come out a hair short, and waiting again for ~1e-16 s would never end.
        if self._tokens >= tokens - EPSILON:
            self._tokens -= tokens
            return True
        return False

    def wait_time(self, tokens: float = 1.0) -> float:
        """Seconds until `tokens` would be available (0 when they are now)."""
        self._refill()
        return max(0.0, (tokens - self._tokens) / self.rate)

    async def take(self, tokens: float = 1.0) -> float:
        """Take tokens, waiting as needed; returns how long the caller waited."""
        waited = 0.0
        async with self._lock:
            while not self.try_take(tokens):
                delay = self.wait_time(tokens)
                await self._sleep(delay)
                waited += delay
        return waited


class Unlimited:
    """The bucket to use when a quantity is not what the rate limits."""

    def try_take(self, tokens: float = 1.0) -> bool:
        return True

    async def take(self, tokens: float = 1.0) -> float:
        return 0.0


Limiter = TokenBucket | Unlimited
