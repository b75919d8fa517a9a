"""GetCampaignReport: traffic per day, and conversion cells only as released (domain/privacy.py).

Impressions, clicks and spend are the advertiser's own purchase and are shown exactly. Conversion
cells (orders, GMV, ROAS) reach an advertiser, seller, creator or operator only as released:
clipped per order, withheld below k buyers, discrete-Laplace noised, drawn once per budget epoch
and stored, each new release paid from the advertiser's epoch and lifetime budgets. Totals are
sums of released cells. Exact cells go only to the audit principals (settings), decided here
from the caller's token, never from a request flag.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream_ads.domain import ledger as lg
from shopstream_ads.domain.campaigns import Campaign
from shopstream_ads.domain.privacy import (
    MICRO,
    Epoch,
    Released,
    cost_micro,
    day_closed,
    release,
    true_cell,
)
from shopstream_ads.settings import AdsSettings, PrivacySettings
from shopstream_ads.store import invalid as invalid_store
from shopstream_ads.store import privacy as store
from shopstream_ads.usecases.campaign_book import CampaignBook
from shopstream_ads.usecases.campaigns import Campaigns
from shopstream_ads.usecases.invalid_traffic import InvalidClicks, summarise
from shopstream_platform.db.database import Database
from shopstream_platform.errors import FailedPreconditionError, InvalidArgumentError
from shopstream_platform.grpc.auth import Principal

ATTEMPTS = 3


@dataclass(frozen=True)
class Row:
    day: str
    impressions: int
    clicks: int
    spend_minor: int
    # None: withheld (fewer than k buyers, or the day not released yet: see pending).
    conversions: int | None
    gmv_minor: int | None
    # The day is not over (plus the release delay): its conversion cells come later.
    pending: bool = False
    # Total row: days whose conversion cells are withheld or pending, missing from its sums.
    days_withheld: int = 0
    # Flagged clicks of the day (not in `clicks`, which are net of them).
    invalid: InvalidClicks = field(default_factory=InvalidClicks)


@dataclass(frozen=True)
class Report:
    campaign: Campaign
    days: list[Row]
    total: Row
    # True only for the audit principals: exact, unclipped, unthresholded ledger cells.
    exact: bool
    epsilon_spent: float
    epsilon_remaining: float
    epsilon_lifetime_remaining: float
    cells_released: int
    resets_at: datetime | None


def is_audit(principal: Principal, privacy: PrivacySettings) -> bool:
    """The platform's audit reads exact numbers: an admin or service principal named in
    settings (the platform has no audit role of its own)."""
    return principal.is_admin and f"{principal.role}:{principal.id}" in privacy.audit_principals


def _valid_day(value: str, field: str) -> str:
    if value:
        try:
            datetime.strptime(value, "%Y-%m-%d")
        except ValueError:
            raise InvalidArgumentError(field, "must be a day as YYYY-MM-DD") from None
    return value


def _in(day: str, first: str, last: str) -> bool:
    return (not first or day >= first) and (not last or day <= last)


class Reports:
    def __init__(
        self,
        db: Database,
        book: CampaignBook,
        campaigns: Campaigns,
        settings: AdsSettings,
        rng: random.Random | None = None,
    ) -> None:
        self._db = db
        self._book = book
        self._campaigns = campaigns
        self._privacy = settings.privacy
        self._rng = rng or random.SystemRandom()

    async def report(
        self,
        principal: Principal,
        campaign_id: str,
        from_day: str,
        to_day: str,
        now: datetime | None = None,
    ) -> Report:
        campaign = await self._campaigns.get(principal, campaign_id)
        first, last = _valid_day(from_day, "from_day"), _valid_day(to_day, "to_day")
        if first and last and first > last:
            raise InvalidArgumentError("from_day", "must not be after to_day")
        traffic = {d: c for d, c in self._book.days(campaign_id).items() if _in(d, first, last)}
        if is_audit(principal, self._privacy):
            return await self._exact(campaign, traffic, first, last)
        return await self._released(campaign, traffic, first, last, now or datetime.now(UTC))

    async def _exact(
        self, campaign: Campaign, traffic: dict[str, list[int]], first: str, last: str
    ) -> Report:
        """Audit: every day's conversion cell exactly as the per-order rows hold it (the rows
        released cells are built from), unclipped and unthresholded."""
        async with self._db.read() as session:
            days, invalid = await self._days(session, campaign.campaign_id, traffic, first, last)
            credited = await store.credited(session, campaign.campaign_id, days)
        rows = []
        for d in days:
            c = traffic.get(d) or [0, 0, 0, 0, 0]
            orders = credited[d]
            rows.append(
                Row(
                    d,
                    c[lg.IMPS],
                    c[lg.CLICKS],
                    c[lg.SPEND] // 1_000,
                    len(orders),
                    sum(o.net_minor for o in orders),
                    invalid=invalid.get(d, InvalidClicks()),
                )
            )
        total = Row(
            "",
            sum(r.impressions for r in rows),
            sum(r.clicks for r in rows),
            sum(c[lg.SPEND] for c in traffic.values()) // 1_000,
            sum(r.conversions or 0 for r in rows),
            sum(r.gmv_minor or 0 for r in rows),
            invalid=_sum_invalid(rows),
        )
        return Report(campaign, rows, total, True, 0.0, 0.0, 0.0, 0, None)

    @staticmethod
    async def _days(
        session: AsyncSession,
        campaign_id: str,
        traffic: dict[str, list[int]],
        first: str,
        last: str,
    ) -> tuple[list[str], dict[str, InvalidClicks]]:
        """The days of the range with traffic, conversions or invalid clicks; the invalid clicks."""
        converted = await store.conversion_days(session, campaign_id)
        invalid = {
            d: summarise(reasons)
            for d, reasons in (await invalid_store.by_day(session, campaign_id)).items()
            if _in(d, first, last)
        }
        days = set(traffic) | set(invalid) | {d for d in converted if _in(d, first, last)}
        return sorted(days), invalid

    async def _released(
        self,
        campaign: Campaign,
        traffic: dict[str, list[int]],
        first: str,
        last: str,
        now: datetime,
    ) -> Report:
        p = self._privacy
        epoch = Epoch.of(now, p.epoch_days)
        for attempt in range(ATTEMPTS):
            try:
                async with self._db.transaction() as session:
                    days, invalid = await self._days(
                        session, campaign.campaign_id, traffic, first, last
                    )
                    closed = [d for d in days if day_closed(d, now, p.release_delay_s)]
                    cells = await store.released(session, campaign.campaign_id, closed, epoch.index)
                    new = await self._draw(
                        session, campaign, [d for d in closed if d not in cells], epoch, now
                    )
                    cells.update({d: cell for d, (cell, _) in new.items()})
                    spent_epoch, spent_life = await store.budget_spent(
                        session, campaign.advertiser_id, epoch.index
                    )
                break
            except IntegrityError:
                # A concurrent query released one of these cells first: read its release.
                if attempt == ATTEMPTS - 1:
                    raise
        cost = sum(c for _, c in new.values())
        rows = [
            self._row(d, traffic.get(d), cells.get(d), invalid.get(d, InvalidClicks()))
            for d in days
        ]
        shown = [r for r in rows if r.conversions is not None]
        total = Row(
            "",
            sum(r.impressions for r in rows),
            sum(r.clicks for r in rows),
            sum(c[lg.SPEND] for c in traffic.values()) // 1_000,
            sum(r.conversions or 0 for r in shown) if shown else None,
            sum(r.gmv_minor or 0 for r in shown) if shown else None,
            days_withheld=len(rows) - len(shown),
            invalid=_sum_invalid(rows),
        )
        return Report(
            campaign,
            rows,
            total,
            False,
            cost / MICRO,
            max(0, cost_micro(p.epsilon_epoch_budget) - spent_epoch) / MICRO,
            max(0, cost_micro(p.epsilon_lifetime_budget) - spent_life) / MICRO,
            sum(1 for _, c in new.values() if c),
            epoch.resets_at,
        )

    async def _draw(
        self,
        session: AsyncSession,
        campaign: Campaign,
        days: list[str],
        epoch: Epoch,
        now: datetime,
    ) -> dict[str, tuple[Released, int]]:
        """Release the cells not yet released this epoch; pay for the shown ones, or refuse."""
        if not days:
            return {}
        p = self._privacy
        credited = await store.credited(session, campaign.campaign_id, days)
        new: dict[str, tuple[Released, int]] = {}
        for day in days:
            cell = release(
                true_cell(credited[day], p.gmv_clip_minor),
                p.k_threshold,
                p.epsilon_per_cell,
                p.gmv_clip_minor,
                self._rng,
            )
            new[day] = (cell, 0 if cell.suppressed else cost_micro(p.epsilon_per_cell))
        cost = sum(c for _, c in new.values())
        if cost:
            ok = await store.try_spend(
                session,
                campaign.advertiser_id,
                epoch.index,
                cost,
                sum(1 for _, c in new.values() if c),
                epoch_cap=cost_micro(p.epsilon_epoch_budget),
                lifetime_cap=cost_micro(p.epsilon_lifetime_budget),
            )
            if not ok:
                await self._refuse(session, campaign, epoch, cost)
        await store.record_releases(
            session, campaign.campaign_id, campaign.advertiser_id, epoch.index, new, now
        )
        return new

    async def _refuse(
        self, session: AsyncSession, campaign: Campaign, epoch: Epoch, cost: int
    ) -> None:
        p = self._privacy
        spent_epoch, spent_life = await store.budget_spent(
            session, campaign.advertiser_id, epoch.index
        )
        epoch_left = cost_micro(p.epsilon_epoch_budget) - spent_epoch
        life_left = cost_micro(p.epsilon_lifetime_budget) - spent_life
        needs = f"this report releases new cells costing epsilon {cost / MICRO:g}"
        if life_left < cost and life_left <= epoch_left:
            raise FailedPreconditionError(
                f"advertiser {campaign.advertiser_id} has spent its lifetime privacy budget "
                f"(epsilon {p.epsilon_lifetime_budget:g}, {max(0, life_left) / MICRO:g} left): "
                f"{needs}; it does not reset. Cells released this epoch can still be read "
                f"until {epoch.resets_at.isoformat()}"
            )
        raise FailedPreconditionError(
            f"advertiser {campaign.advertiser_id} has spent this epoch's privacy budget "
            f"(epsilon {p.epsilon_epoch_budget:g} per {p.epoch_days} days, "
            f"{max(0, epoch_left) / MICRO:g} left): {needs}; the budget resets at "
            f"{epoch.resets_at.isoformat()} (cells released this epoch can still be read)"
        )

    @staticmethod
    def _row(
        day: str, traffic: list[int] | None, cell: Released | None, invalid: InvalidClicks
    ) -> Row:
        c = traffic or [0, 0, 0, 0, 0]
        if cell is None:
            return Row(
                day, c[lg.IMPS], c[lg.CLICKS], c[lg.SPEND] // 1_000, None, None, True, 0, invalid
            )
        return Row(
            day,
            c[lg.IMPS],
            c[lg.CLICKS],
            c[lg.SPEND] // 1_000,
            cell.conversions,
            cell.gmv_minor,
            invalid=invalid,
        )


def _sum_invalid(rows: list[Row]) -> InvalidClicks:
    return InvalidClicks(
        sum(r.invalid.givt for r in rows),
        sum(r.invalid.sivt for r in rows),
        sum(r.invalid.credited for r in rows),
    )
