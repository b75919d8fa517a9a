"""The auction: rank by bid x predicted rate (eCPM) and charge each winner the second price.

A winner pays the least it could have bid and kept its rank: the eCPM of the ad below it,
turned back into its own bid units, plus one minor unit, never more than its bid (generalised
second price, as search and feed ad auctions charge).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shopstream_ads.domain.campaigns import BidType, Campaign

RELEVANT_BOOST = 2.0


@dataclass(frozen=True)
class Candidate:
    campaign: Campaign
    predicted_ctr: float
    relevance: float

    @property
    def ecpm(self) -> float:
        """Expected value of 1,000 impressions, in minor units."""
        if self.campaign.bid_type is BidType.CPM:
            return self.campaign.bid_minor * self.relevance
        return self.campaign.bid_minor * self.predicted_ctr * 1_000 * self.relevance


@dataclass(frozen=True)
class Win:
    candidate: Candidate
    rank: int
    clearing_price_minor: int


def predicted_ctr(clicks: int, impressions: int, prior_ctr: float, prior_impressions: int) -> float:
    """Observed click rate shrunk towards a prior, so a new campaign is neither 0 nor 100%."""
    return (clicks + prior_ctr * prior_impressions) / (impressions + prior_impressions)


def relevance(campaign: Campaign, context_product_ids: Iterable[str]) -> float:
    on_screen = set(context_product_ids)
    if on_screen and on_screen.intersection(campaign.promoted_product_ids):
        return RELEVANT_BOOST
    return 1.0


def run_auction(candidates: Sequence[Candidate], slots: int, reserve_minor: int) -> list[Win]:
    ranked = sorted(candidates, key=lambda c: (-c.ecpm, c.campaign.campaign_id))
    wins = []
    for rank, winner in enumerate(ranked[:slots], start=1):
        below = ranked[rank].ecpm if rank < len(ranked) else 0.0
        wins.append(Win(winner, rank, _second_price(winner, below, reserve_minor)))
    return wins


def _second_price(winner: Candidate, ecpm_below: float, reserve_minor: int) -> int:
    c = winner.campaign
    if c.bid_type is BidType.CPM:
        needed = ecpm_below / winner.relevance
    else:
        needed = ecpm_below / (winner.predicted_ctr * 1_000 * winner.relevance)
    price = math.floor(needed) + 1 if ecpm_below > 0 else reserve_minor
    return max(reserve_minor, min(c.bid_minor, price))
