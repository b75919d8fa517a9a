"""Aggregate-only reports: k-anonymity suppression and optional Laplace noise.

A conversion cell (attributed orders and GMV of one campaign-day) with fewer than k conversions
is withheld, so a report never singles out a handful of buyers. With noise on, a query spends
epsilon from the advertiser's daily budget: half on the counts (sensitivity 1 per buyer order)
and half on GMV (sensitivity = the per-order clip). Day cells hold disjoint orders, so one
query's noise over all days costs epsilon once (parallel composition); the total row is the sum
of the noised days (post-processing, free).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Cell:
    conversions: float
    gmv_minor: float


def laplace(scale: float, rng: random.Random) -> float:
    u = rng.random() - 0.5
    return -scale * math.copysign(1.0, u) * math.log(1.0 - 2.0 * abs(u))


def noised(cell: Cell, epsilon: float, gmv_clip_minor: int, rng: random.Random) -> Cell:
    half = epsilon / 2.0
    return Cell(
        max(0.0, cell.conversions + laplace(1.0 / half, rng)),
        max(0.0, cell.gmv_minor + laplace(gmv_clip_minor / half, rng)),
    )


def shown(conversions: float, k: int) -> bool:
    """Whether a cell with this many conversions may be shown (k-anonymity threshold)."""
    return round(conversions) >= k
