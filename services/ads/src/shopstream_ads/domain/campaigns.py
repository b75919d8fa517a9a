"""Campaigns: what an advertiser (a seller) buys, the rules a new one must pass, and its status."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime

from shopstream_platform.errors import InvalidArgumentError


class BidType(enum.IntEnum):
    # Values match shopstream.ads.v1.BidType.
    CPC = 1
    CPM = 2


class Status(enum.IntEnum):
    # Values match shopstream.ads.v1.CampaignStatus.
    ACTIVE = 1
    PAUSED = 2
    DAILY_BUDGET_EXHAUSTED = 3
    BUDGET_EXHAUSTED = 4
    ENDED = 5
    SCHEDULED = 6


class ClickWindow(enum.IntEnum):
    # Values match shopstream.ads.v1.ClickWindow.
    UNSPECIFIED = 0  # the platform's default
    ONE_DAY = 1
    SEVEN_DAYS = 2
    FOURTEEN_DAYS = 3
    TWENTY_EIGHT_DAYS = 4


class ViewWindow(enum.IntEnum):
    # Values match shopstream.ads.v1.ViewWindow.
    UNSPECIFIED = 0  # the platform's default
    OFF = 1
    ONE_DAY = 2
    SEVEN_DAYS = 3


DAY_S = 86_400
CLICK_WINDOW_S = {
    ClickWindow.ONE_DAY: DAY_S,
    ClickWindow.SEVEN_DAYS: 7 * DAY_S,
    ClickWindow.FOURTEEN_DAYS: 14 * DAY_S,
    ClickWindow.TWENTY_EIGHT_DAYS: 28 * DAY_S,
}
VIEW_WINDOW_S = {ViewWindow.OFF: 0, ViewWindow.ONE_DAY: DAY_S, ViewWindow.SEVEN_DAYS: 7 * DAY_S}
MAX_ENGAGED_VIEW_MS = 60_000


@dataclass(frozen=True)
class AttributionChoice:
    """An advertiser's attribution choices for a campaign (UNSPECIFIED: the platform's setting).
    Fixed at creation: campaigns are not edited, so what served is what is credited."""

    click_window: ClickWindow = ClickWindow.UNSPECIFIED
    view_window: ViewWindow = ViewWindow.UNSPECIFIED
    # A view counts only when watched at least this long (an engaged view); 0: every view.
    engaged_view_ms: int = 0

    def windows(self, default_click_s: int, default_view_s: int) -> tuple[int, int]:
        """(click window, view window) in seconds; a view window of 0: views are not credited."""
        click_s = CLICK_WINDOW_S.get(self.click_window, default_click_s)
        view_s = VIEW_WINDOW_S.get(self.view_window, default_view_s)
        return click_s, view_s


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    advertiser_id: str
    name: str
    promoted_product_ids: tuple[str, ...]
    promoted_creator_ids: tuple[str, ...]
    bid_type: BidType
    bid_minor: int
    currency: str
    daily_budget_minor: int
    total_budget_minor: int
    starts_at: datetime
    ends_at: datetime | None
    placements: tuple[str, ...]
    paused: bool
    created_at: datetime
    updated_at: datetime
    attribution: AttributionChoice = field(default_factory=AttributionChoice)

    def serves_in(self, placement: str) -> bool:
        return not self.placements or placement in self.placements

    def with_paused(self, paused: bool, at: datetime) -> Campaign:
        return replace(self, paused=paused, updated_at=at)


@dataclass(frozen=True)
class Spend:
    """What the ledger has charged a campaign (in micro-units: 1/1,000 of a minor unit, since a
    CPM impression costs a thousandth of the price)."""

    total_micros: int = 0
    today_micros: int = 0


def status_of(campaign: Campaign, spend: Spend, now: datetime) -> Status:
    if campaign.paused:
        return Status.PAUSED
    if campaign.ends_at is not None and now >= campaign.ends_at:
        return Status.ENDED
    if spend.total_micros >= campaign.total_budget_minor * 1_000:
        return Status.BUDGET_EXHAUSTED
    if spend.today_micros >= campaign.daily_budget_minor * 1_000:
        return Status.DAILY_BUDGET_EXHAUSTED
    if now < campaign.starts_at:
        return Status.SCHEDULED
    return Status.ACTIVE


MAX_PROMOTED = 100
MAX_NAME = 200


def validate_new(campaign: Campaign, marketplace_currency: str) -> None:
    """Raises InvalidArgumentError naming the first field that is wrong."""
    if not campaign.advertiser_id:
        raise InvalidArgumentError("advertiser_id", "is required")
    if not campaign.name.strip() or len(campaign.name) > MAX_NAME:
        raise InvalidArgumentError("name", f"must be 1-{MAX_NAME} characters")
    if not campaign.promoted_product_ids and not campaign.promoted_creator_ids:
        raise InvalidArgumentError(
            "promoted_product_ids", "a campaign promotes at least one product or creator"
        )
    if len(campaign.promoted_product_ids) + len(campaign.promoted_creator_ids) > MAX_PROMOTED:
        raise InvalidArgumentError("promoted_product_ids", f"at most {MAX_PROMOTED} promoted items")
    if campaign.bid_type not in (BidType.CPC, BidType.CPM):
        raise InvalidArgumentError("bid_type", "must be BID_TYPE_CPC or BID_TYPE_CPM")
    if campaign.currency != marketplace_currency:
        raise InvalidArgumentError(
            "bid.currency", f"campaigns bid in the marketplace currency {marketplace_currency}"
        )
    if campaign.bid_minor <= 0:
        raise InvalidArgumentError("bid", "must be positive")
    if campaign.daily_budget_minor <= 0:
        raise InvalidArgumentError("daily_budget", "must be positive")
    if campaign.total_budget_minor < campaign.daily_budget_minor:
        raise InvalidArgumentError("total_budget", "must be at least the daily budget")
    if campaign.bid_type is BidType.CPC and campaign.bid_minor > campaign.daily_budget_minor:
        raise InvalidArgumentError("bid", "a CPC bid above the daily budget could never be paid")
    if campaign.ends_at is not None and campaign.ends_at <= campaign.starts_at:
        raise InvalidArgumentError("ends_at", "must be after starts_at")
    if not 0 <= campaign.attribution.engaged_view_ms <= MAX_ENGAGED_VIEW_MS:
        raise InvalidArgumentError(
            "attribution.engaged_view_ms", f"must be 0-{MAX_ENGAGED_VIEW_MS} ms"
        )
