"""CreateCampaign's request checks: what an advertiser asks for, made into a draft campaign for
the campaign store (campaigns.py), which checks its bounds and rules and records it."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from shopstream_ads.domain.campaigns import AttributionChoice, BidType, Campaign
from shopstream_platform.errors import InvalidArgumentError
from shopstream_platform.grpc.auth import Principal

EPOCH = datetime.fromtimestamp(0, UTC)

# Campaigns.create: (caller, draft, idempotency key) -> the campaign created or found.
Create = Callable[[Principal, Campaign, str], Awaitable[Campaign]]


@dataclass(frozen=True)
class CampaignRequest:
    advertiser_id: str
    name: str
    promoted_product_ids: tuple[str, ...]
    promoted_creator_ids: tuple[str, ...]
    bid_type: int  # the proto's value, not yet known to be a BidType
    bid_minor: int
    currency: str  # the bid's
    daily_budget_minor: int
    daily_budget_currency: str  # "" or the bid's
    total_budget_minor: int
    total_budget_currency: str
    starts_at: datetime | None  # None: at once
    ends_at: datetime | None  # None: until the budget is spent
    placements: tuple[str, ...]
    attribution: AttributionChoice = dataclasses.field(default_factory=AttributionChoice)


def draft_of(request: CampaignRequest) -> Campaign:
    """The campaign asked for, without its id and times (the store sets them)."""
    if request.bid_type not in (BidType.CPC, BidType.CPM):
        raise InvalidArgumentError("bid_type", "must be BID_TYPE_CPC or BID_TYPE_CPM")
    draft = Campaign(
        campaign_id="",
        advertiser_id=request.advertiser_id,
        name=request.name,
        promoted_product_ids=request.promoted_product_ids,
        promoted_creator_ids=request.promoted_creator_ids,
        bid_type=BidType(request.bid_type),
        bid_minor=request.bid_minor,
        currency=request.currency,
        daily_budget_minor=request.daily_budget_minor,
        total_budget_minor=request.total_budget_minor,
        starts_at=request.starts_at or EPOCH,
        ends_at=request.ends_at,
        placements=request.placements,
        paused=False,
        created_at=EPOCH,
        updated_at=EPOCH,
        attribution=request.attribution,
    )
    for field, currency in (
        ("daily_budget", request.daily_budget_currency),
        ("total_budget", request.total_budget_currency),
    ):
        if currency not in ("", request.currency):
            raise InvalidArgumentError(f"{field}.currency", "must be the bid's currency")
    return draft


class NewCampaigns:
    def __init__(self, create: Create) -> None:
        self._create = create

    async def create(
        self, principal: Principal, request: CampaignRequest, request_id: str
    ) -> Campaign:
        return await self._create(principal, draft_of(request), request_id)
