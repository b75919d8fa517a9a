"""CreateCampaign's request checks (usecases/new_campaigns.py), before the store's own."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shopstream_ads.domain.campaigns import BidType
from shopstream_ads.usecases.new_campaigns import EPOCH, CampaignRequest, draft_of
from shopstream_platform.errors import InvalidArgumentError

ASKED = CampaignRequest(
    advertiser_id="s1",
    name="spring",
    promoted_product_ids=("p1",),
    promoted_creator_ids=(),
    bid_type=int(BidType.CPC),
    bid_minor=50,
    currency="GBP",
    daily_budget_minor=10_000,
    daily_budget_currency="",
    total_budget_minor=100_000,
    total_budget_currency="GBP",
    starts_at=None,
    ends_at=None,
    placements=("feed",),
)


def test_a_request_becomes_a_draft_without_id_or_times() -> None:
    draft = draft_of(ASKED)
    assert draft.bid_type is BidType.CPC
    assert draft.campaign_id == "" and draft.starts_at == EPOCH and not draft.paused
    assert draft.total_budget_minor == 100_000


@pytest.mark.parametrize("bid_type", [0, 3, -1])
def test_an_unknown_bid_type_is_refused(bid_type: int) -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        draft_of(replace(ASKED, bid_type=bid_type))
    assert raised.value.field == "bid_type"


def test_a_budget_in_another_currency_is_refused() -> None:
    with pytest.raises(InvalidArgumentError) as raised:
        draft_of(replace(ASKED, daily_budget_currency="EUR"))
    assert raised.value.field == "daily_budget.currency"
