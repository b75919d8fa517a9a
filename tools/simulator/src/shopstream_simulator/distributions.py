"""The shapes of a social-commerce world: power-law audiences, Zipf popularity, bursty traffic."""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Iterator, Sequence
from typing import Generic, TypeVar

from shopstream_simulator.ids import sub_rng

T = TypeVar("T")


def pareto_int(rng: random.Random, alpha: float, minimum: int, cap: int) -> int:
    """A Pareto draw (P(X > x) = (minimum / x) ** alpha), capped: follower counts."""
    return min(cap, int(minimum * rng.paretovariate(alpha)))


def zipf_weights(n: int, exponent: float) -> list[float]:
    """Weight of the k-th most popular item ∝ 1 / k^exponent."""
    return [1.0 / math.pow(k, exponent) for k in range(1, n + 1)]


class Weighted(Generic[T]):
    """Draws items by weight in O(log n) (cumulative weights and bisect)."""

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        if not items or len(items) != len(weights):
            raise ValueError("need as many positive weights as items, and at least one item")
        self.items = list(items)
        self._cumulative = list(itertools.accumulate(weights))
        if self._cumulative[-1] <= 0:
            raise ValueError("weights must sum to a positive number")

    def draw(self, rng: random.Random) -> T:
        x = rng.random() * self._cumulative[-1]
        return self.items[min(bisect.bisect_right(self._cumulative, x), len(self.items) - 1)]


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw: Knuth's method for small means, the normal approximation for large."""
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


# Bursts: each window's intensity is the mean rate times a Gamma(shape, 1/shape) factor, so
# traffic comes in waves; the factors are scaled to average exactly 1 over the run, so a short run
# still makes its configured number of visits. The runner's token bucket keeps the waves under
# the configured rate.
BURST_WINDOW_S = 10.0
BURST_SHAPE = 2.0


def burst_factors(seed: int, label: str, duration_s: float) -> list[float]:
    windows = math.ceil(duration_s / BURST_WINDOW_S)
    raw = [
        sub_rng(seed, "burst", label, w).gammavariate(BURST_SHAPE, 1.0 / BURST_SHAPE)
        for w in range(windows)
    ]
    lengths = [min(BURST_WINDOW_S, duration_s - w * BURST_WINDOW_S) for w in range(windows)]
    mean = sum(f * n for f, n in zip(raw, lengths, strict=True)) / duration_s
    return [f / mean for f in raw]


def bursty_arrivals(seed: int, label: str, rate_per_s: float, duration_s: float) -> Iterator[float]:
    """Arrival times in [0, duration) averaging `rate_per_s`, generated lazily window by window
    (each window has its own random stream)."""
    if rate_per_s <= 0 or duration_s <= 0:
        return
    for w, factor in enumerate(burst_factors(seed, label, duration_s)):
        rng = sub_rng(seed, "arrivals", label, w)
        start = w * BURST_WINDOW_S
        length = min(BURST_WINDOW_S, duration_s - start)
        count = poisson(rng, rate_per_s * factor * length)
        yield from sorted(start + rng.random() * length for _ in range(count))
