"""The commerce score, formula v1: six explainable components, a weighted sum, a tier.

Every component is 0-100 and saturates, so no single huge number buys the top; see
docs/creator-score.md for the reasons behind each constant.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from shopstream_creator_score.domain.state import DAY, FOLLOWERS, VALUE, State, decay

FORMULA_VERSION = "v1"

WEIGHTS = {
    "sales": 0.30,
    "conversion": 0.20,
    "engagement": 0.15,
    "authenticity": 0.15,
    "quality": 0.10,
    "activity": 0.10,
}
# Saturation scales: the value at which a component reaches ~63 (1 - 1/e of 100).
SALES_SCALE_MINOR = 100_000  # 1,000.00 of decayed net GMV
GPM_SCALE_MINOR = 20_000  # 200.00 per 1,000 views
ENGAGEMENT_FULL = 0.08  # 8% of views engage → 100
REFUND_ZERO = 0.30  # a 30% refund rate scores 0
ACTIVITY_FULL = 12.0  # ~12 recent pieces of content → 100
# Audience authenticity.
SPIKE_RATIO = 3.0  # followers x3 within a day...
SPIKE_MIN_FOLLOWERS = 1_000
SPIKE_ENGAGEMENT_PER_FOLLOWER = 0.01  # ...with fewer engagements than 1% of followers
MISMATCH_MIN_FOLLOWERS = 10_000
MISMATCH_VIEWS_PER_FOLLOWER = 0.02
FLAGGED_SCORE_CAP = 40.0
# Creator levels L0-L8: the minimum score of each level.
TIER_FLOORS = (0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 72.0, 85.0)

FLAG_SPIKE = "FOLLOWER_SPIKE_WITHOUT_ENGAGEMENT"
FLAG_MISMATCH = "LOW_ENGAGEMENT_FOR_FOLLOWERS"


@dataclass(frozen=True)
class Score:
    total: float
    components: dict[str, float]
    tier: int
    flags: list[str]
    net_gmv_minor: int
    gpm_minor: int
    category_gmv: dict[str, int]
    category_scores: dict[str, float]
    # Reported alongside, not weighted (docs/creator-score.md says why).
    ad_gmv_minor: int = 0
    organic_share: float = 0.0


def _saturate(value: float, scale: float) -> float:
    return 100.0 * (1.0 - math.exp(-max(value, 0.0) / scale))


def tier_for(total: float) -> int:
    return max(i for i, floor in enumerate(TIER_FLOORS) if total >= floor)


def authenticity(state: State, engagements: float) -> tuple[float, list[str]]:
    followers = int(state["followers"])
    flags: list[str] = []
    value = 100.0
    spike = any(
        b[DAY] - a[DAY] <= 1
        and a[FOLLOWERS] > 0
        and b[FOLLOWERS] >= SPIKE_MIN_FOLLOWERS
        and b[FOLLOWERS] / a[FOLLOWERS] >= SPIKE_RATIO
        for a, b in itertools.pairwise(state["history"])
    )
    if spike and engagements < SPIKE_ENGAGEMENT_PER_FOLLOWER * followers:
        flags.append(FLAG_SPIKE)
        value = min(value, 20.0)
    views = float(state["views"][VALUE])
    if followers >= MISMATCH_MIN_FOLLOWERS and views < MISMATCH_VIEWS_PER_FOLLOWER * followers:
        flags.append(FLAG_MISMATCH)
        value = min(value, 50.0)
    return value, flags


def score(state: State, now: float, half_life_s: float) -> Score:
    """The score of a creator's state as of `now` (event time)."""
    gmv = decay(state["gmv"], now, half_life_s)
    refunds = decay(state["refunds"], now, half_life_s)
    net = max(gmv - refunds, 0.0)
    views = decay(state["views"], now, half_life_s)
    engagements = decay(state["engagements"], now, half_life_s)
    gpm = net * 1_000.0 / views if views >= 1.0 else 0.0
    refund_rate = refunds / gmv if gmv > 0 else 0.0
    auth, flags = authenticity(state, engagements)
    components = {
        "sales": _saturate(net, SALES_SCALE_MINOR),
        "conversion": _saturate(gpm, GPM_SCALE_MINOR),
        "engagement": 100.0 * min(1.0, (engagements / views) / ENGAGEMENT_FULL)
        if views >= 1.0
        else 0.0,
        "authenticity": auth,
        "quality": 100.0 * max(0.0, 1.0 - refund_rate / REFUND_ZERO) if gmv > 0 else 50.0,
        "activity": 100.0 * min(1.0, decay(state["activity"], now, half_life_s) / ACTIVITY_FULL),
    }
    total = sum(WEIGHTS[name] * value for name, value in components.items())
    if flags:
        total = min(total, FLAGGED_SCORE_CAP)
    total = round(total, 2)
    category_gmv = {
        category: int(max(decay(cell, now, half_life_s), 0.0))
        for category, cell in state["by_cat"].items()
    }
    categories = set(category_gmv) | set(state["declared"])
    # Standing in a category: 60% sales in that category, 40% the overall score.
    category_scores = {
        c: round(0.6 * _saturate(category_gmv.get(c, 0), SALES_SCALE_MINOR) + 0.4 * total, 2)
        for c in categories
    }
    ad_gmv = decay(state.get("ad_gmv", [0.0, 0.0]), now, half_life_s)
    organic_share = 1.0 - min(1.0, max(ad_gmv, 0.0) / net) if net > 0 else 0.0
    return Score(
        total=total,
        components={k: round(v, 2) for k, v in components.items()},
        tier=tier_for(total),
        flags=flags,
        net_gmv_minor=int(net),
        gpm_minor=int(gpm),
        category_gmv=category_gmv,
        category_scores=category_scores,
        ad_gmv_minor=int(ad_gmv),
        organic_share=round(organic_share, 4),
    )
