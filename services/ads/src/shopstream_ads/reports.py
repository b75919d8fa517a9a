"""GetCampaignReport: per-day aggregates from the ledger, with k-suppression and optional noise."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime

from shopstream_ads.book import CampaignBook
from shopstream_ads.campaigns import Campaigns
from shopstream_ads.domain import ledger as lg
from shopstream_ads.domain.campaigns import Campaign
from shopstream_ads.domain.privacy import Cell, noised, shown
from shopstream_ads.settings import AdsSettings
from shopstream_ads.store import repository as repo
from shopstream_platform.db.database import Database
from shopstream_platform.errors import FailedPreconditionError, InvalidArgumentError
from shopstream_platform.grpc.auth import Principal


@dataclass(frozen=True)
class Row:
    day: str
    impressions: int
    clicks: int
    spend_minor: int
    # None: suppressed (fewer than k conversions).
    conversions: int | None
    gmv_minor: int | None


@dataclass(frozen=True)
class Report:
    campaign: Campaign
    days: list[Row]
    total: Row
    noised: bool
    epsilon_spent: float
    epsilon_remaining: float


def _valid_day(value: str, field: str) -> str:
    if value:
        try:
            datetime.strptime(value, "%Y-%m-%d")
        except ValueError:
            raise InvalidArgumentError(field, "must be a day as YYYY-MM-DD") from None
    return value


class Reports:
    def __init__(
        self, db: Database, book: CampaignBook, campaigns: Campaigns, settings: AdsSettings
    ) -> None:
        self._db = db
        self._book = book
        self._campaigns = campaigns
        self._privacy = settings.privacy
        self._rng = random.SystemRandom()

    async def report(
        self, principal: Principal, campaign_id: str, from_day: str, to_day: str, noise: bool
    ) -> Report:
        campaign = await self._campaigns.get(principal, campaign_id)
        first, last = _valid_day(from_day, "from_day"), _valid_day(to_day, "to_day")
        if first and last and first > last:
            raise InvalidArgumentError("from_day", "must not be after to_day")
        days = {
            d: c
            for d, c in sorted(self._book.days(campaign_id).items())
            if (not first or d >= first) and (not last or d <= last)
        }
        spent = 0.0
        remaining = self._privacy.epsilon_budget
        if noise:
            today = datetime.now(UTC).strftime("%Y-%m-%d")
            async with self._db.transaction() as session:
                left = await repo.spend_epsilon(
                    session,
                    campaign.advertiser_id,
                    today,
                    self._privacy.epsilon_per_query,
                    self._privacy.epsilon_budget,
                )
            if left is None:
                raise FailedPreconditionError(
                    f"advertiser {campaign.advertiser_id} has spent today's privacy budget "
                    f"(epsilon {self._privacy.epsilon_budget:g}); noised reports resume tomorrow (UTC)"
                )
            spent, remaining = self._privacy.epsilon_per_query, left
        rows = []
        totals = [0, 0, 0, 0.0, 0.0]
        for day, c in days.items():
            cell = Cell(c[lg.CONVS], c[lg.GMV])
            if noise:
                cell = noised(cell, spent, self._privacy.gmv_clip_minor, self._rng)
            rows.append(self._row(day, c[lg.IMPS], c[lg.CLICKS], c[lg.SPEND], cell))
            for i, v in enumerate(
                (c[lg.IMPS], c[lg.CLICKS], c[lg.SPEND], cell.conversions, cell.gmv_minor)
            ):
                totals[i] += v
        total = self._row(
            "", int(totals[0]), int(totals[1]), int(totals[2]), Cell(totals[3], totals[4])
        )
        return Report(campaign, rows, total, noise, spent, remaining)

    def _row(self, day: str, imps: int, clicks: int, spend_micros: int, cell: Cell) -> Row:
        visible = shown(cell.conversions, self._privacy.k_threshold)
        return Row(
            day,
            imps,
            clicks,
            spend_micros // 1_000,
            round(cell.conversions) if visible else None,
            round(cell.gmv_minor) if visible else None,
        )
