"""Domain values to protobuf messages and back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from google.protobuf.timestamp_pb2 import Timestamp

from shopstream.ads.v1 import ads_pb2
from shopstream.common.v1 import money_pb2
from shopstream_ads.domain.campaigns import (
    AttributionChoice,
    BidType,
    Campaign,
    ClickWindow,
    Status,
    ViewWindow,
    status_of,
)
from shopstream_ads.usecases.campaign_book import CampaignBook
from shopstream_platform.errors import InvalidArgumentError


def timestamp(t: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(t.astimezone(UTC))
    return ts


def seconds(ts: Timestamp) -> float:
    return float(ts.seconds) + ts.nanos / 1e9


def when(ts: Timestamp) -> datetime:
    return datetime.fromtimestamp(seconds(ts), UTC)


# The domain's enums mirror the protos' by number (tests/unit/test_enum_mirrors.py checks).
def bid_type_pb(bid_type: BidType) -> ads_pb2.BidType.ValueType:
    return cast("ads_pb2.BidType.ValueType", int(bid_type))


def status_pb(status: Status) -> ads_pb2.CampaignStatus.ValueType:
    return cast("ads_pb2.CampaignStatus.ValueType", int(status))


def attribution_pb(choice: AttributionChoice) -> ads_pb2.CampaignAttribution:
    return ads_pb2.CampaignAttribution(
        click_window=cast("ads_pb2.ClickWindow.ValueType", int(choice.click_window)),
        view_window=cast("ads_pb2.ViewWindow.ValueType", int(choice.view_window)),
        engaged_view_ms=choice.engaged_view_ms,
    )


def attribution_choice(asked: ads_pb2.CampaignAttribution) -> AttributionChoice:
    """An advertiser's choices; InvalidArgumentError for a window this server does not know."""
    if asked.click_window not in ClickWindow._value2member_map_:
        raise InvalidArgumentError("attribution.click_window", "is not a known click window")
    if asked.view_window not in ViewWindow._value2member_map_:
        raise InvalidArgumentError("attribution.view_window", "is not a known view window")
    return AttributionChoice(
        ClickWindow(asked.click_window), ViewWindow(asked.view_window), asked.engaged_view_ms
    )


def money(amount_minor: int, currency: str) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=amount_minor, currency=currency)


def campaign_pb(c: Campaign, book: CampaignBook, now: datetime) -> ads_pb2.Campaign:
    spend = book.spend(c.campaign_id, now)
    out = ads_pb2.Campaign(
        campaign_id=c.campaign_id,
        advertiser_id=c.advertiser_id,
        name=c.name,
        promoted_product_ids=c.promoted_product_ids,
        promoted_creator_ids=c.promoted_creator_ids,
        bid_type=bid_type_pb(c.bid_type),
        bid=money(c.bid_minor, c.currency),
        daily_budget=money(c.daily_budget_minor, c.currency),
        total_budget=money(c.total_budget_minor, c.currency),
        starts_at=timestamp(c.starts_at),
        status=status_pb(status_of(c, spend, now)),
        spent_total=money(spend.total_micros // 1_000, c.currency),
        spent_today=money(spend.today_micros // 1_000, c.currency),
        placements=c.placements,
        attribution=attribution_pb(c.attribution),
    )
    if c.ends_at is not None:
        out.ends_at.CopyFrom(timestamp(c.ends_at))
    return out
