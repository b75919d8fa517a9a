"""SelectAds: eligible campaigns for a placement, ranked and priced by the auction (the campaigns
and their spend read from the book, in memory: no database on this path)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from shopstream_ads.domain.auction import Candidate, Win, predicted_ctr, relevance, run_auction
from shopstream_ads.domain.campaigns import Status, status_of
from shopstream_ads.metrics import AdsMetrics
from shopstream_ads.settings import AdsSettings
from shopstream_ads.usecases.campaign_book import CampaignBook
from shopstream_ads.usecases.limits import check_select
from shopstream_platform.errors import InvalidArgumentError
from shopstream_platform.ids import new_id


class Auctions:
    def __init__(self, book: CampaignBook, settings: AdsSettings, metrics: AdsMetrics) -> None:
        self._book = book
        self._settings = settings
        self._metrics = metrics

    def select(
        self, placement: str, slots: int, context_product_ids: Sequence[str]
    ) -> tuple[str, list[Win], int]:
        """The auction id, the winners in rank order, and how many campaigns took part."""
        check_select(placement, slots, context_product_ids)
        if not placement:
            raise InvalidArgumentError("placement", "is required")
        if slots < 0 or slots > self._settings.max_slots:
            raise InvalidArgumentError("slots", f"must be 0-{self._settings.max_slots}")
        started = time.perf_counter()
        now = datetime.now(UTC)
        s = self._settings
        candidates = []
        for campaign in self._book.campaigns():
            if not campaign.serves_in(placement):
                continue
            spend = self._book.spend(campaign.campaign_id, now)
            # Budget-exhausted, paused, ended and not-yet-started campaigns take no part.
            if status_of(campaign, spend, now) is not Status.ACTIVE:
                continue
            impressions, clicks = self._book.totals(campaign.campaign_id)
            candidates.append(
                Candidate(
                    campaign,
                    predicted_ctr(clicks, impressions, s.prior_ctr, s.prior_impressions),
                    relevance(campaign, context_product_ids),
                )
            )
        wins = run_auction(candidates, slots or 1, s.reserve_price_minor)
        self._metrics.auctions.inc()
        self._metrics.auction_seconds.observe(time.perf_counter() - started)
        return new_id("auc"), wins, len(candidates)
