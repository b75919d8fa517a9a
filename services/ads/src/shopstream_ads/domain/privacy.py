"""The privacy rules of released conversion numbers (no I/O).

A conversion cell is one campaign's attributed conversions on one UTC day: how many orders and
how much GMV. It leaves the service only through `release`:

- every order's GMV is clipped to `[0, bound]` before the cell is summed, so one order moves the
  GMV sum by at most `bound` and the conversion count by at most 1 (the sensitivities);
- a cell whose distinct buyers are fewer than k is withheld (k-anonymity floor);
- a shown cell gets discrete Laplace (two-sided geometric) noise, epsilon split evenly between
  the count (sensitivity 1) and the GMV (sensitivity `bound`);
- each release costs `epsilon` from the advertiser's budget epoch (7 days by default); the
  released value is stored and returned again for the rest of the epoch, never re-drawn;
- totals and coarser rows are sums of released cells only (post-processing, free).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

DAY_S = 86_400
MICRO = 1_000_000  # budgets are kept in micro-epsilon (integers: no float drift in the ledger)


@dataclass(frozen=True)
class Conversion:
    """One attributed order of a cell: who bought, and its net credited value."""

    buyer_id: str
    net_minor: int


@dataclass(frozen=True)
class TrueCell:
    """A cell's exact numbers after clipping: what the noise is added to."""

    buyers: int
    conversions: int
    clipped_gmv_minor: int


@dataclass(frozen=True)
class Released:
    """A cell as it leaves: None when withheld (fewer than k buyers)."""

    conversions: int | None
    gmv_minor: int | None

    @property
    def suppressed(self) -> bool:
        return self.conversions is None


def clip(amount_minor: int, bound_minor: int) -> int:
    """One conversion's contribution: at least 0, at most the bound."""
    return max(0, min(amount_minor, bound_minor))


def true_cell(conversions: Iterable[Conversion], bound_minor: int) -> TrueCell:
    rows = list(conversions)
    return TrueCell(
        buyers=len({c.buyer_id for c in rows}),
        conversions=len(rows),
        clipped_gmv_minor=sum(clip(c.net_minor, bound_minor) for c in rows),
    )


def _geometric(alpha: float, rng: random.Random) -> int:
    """Failures before the first success of Bernoulli(1 - alpha) trials: P(g) = (1-a) a^g."""
    u = 1.0 - rng.random()  # (0, 1]
    return math.floor(math.log(u) / math.log(alpha))


def discrete_laplace(scale: float, rng: random.Random) -> int:
    """An integer with P(x) proportional to exp(-|x| / scale): the difference of two geometrics
    with alpha = exp(-1/scale). scale = sensitivity / epsilon gives epsilon-DP for integer data."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    alpha = math.exp(-1.0 / scale)
    return _geometric(alpha, rng) - _geometric(alpha, rng)


def release(
    cell: TrueCell, k: int, epsilon: float, bound_minor: int, rng: random.Random
) -> Released:
    """Withheld below k buyers; otherwise the clipped numbers plus discrete Laplace noise, half
    the epsilon each on the count (sensitivity 1) and the GMV (sensitivity bound)."""
    if cell.buyers < k:
        return Released(None, None)
    half = epsilon / 2.0
    conversions = cell.conversions + discrete_laplace(1.0 / half, rng)
    gmv = cell.clipped_gmv_minor + discrete_laplace(bound_minor / half, rng)
    return Released(max(0, conversions), max(0, gmv))


def cost_micro(epsilon: float) -> int:
    return round(epsilon * MICRO)


@dataclass(frozen=True)
class Epoch:
    """A budget epoch: `days` long, counted from 1970-01-01 UTC (data-independent boundaries)."""

    index: int
    days: int

    @staticmethod
    def of(at: datetime, days: int) -> Epoch:
        return Epoch(int(at.timestamp()) // (days * DAY_S), days)

    @property
    def starts_at(self) -> datetime:
        return datetime.fromtimestamp(self.index * self.days * DAY_S, UTC)

    @property
    def resets_at(self) -> datetime:
        return self.starts_at + timedelta(days=self.days)


def day_closed(day: str, now: datetime, delay_s: float) -> bool:
    """A day's conversion cells are released only once the day is over (plus a settling delay),
    so an answer cached for the epoch is not a snapshot of a day still filling up."""
    end = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC) + timedelta(days=1)
    return now >= end + timedelta(seconds=delay_s)
