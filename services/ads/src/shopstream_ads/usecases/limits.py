"""Bounds on every request field that reaches a database row or a Kafka record.

A request within these bounds makes events far below the broker's record limit (1 MB by
default: a campaign at every bound is about 30 KB) and money arithmetic in micro-units far
below int64. A field past its bound is refused with INVALID_ARGUMENT naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence

from shopstream.ads.v1 import ads_pb2
from shopstream_ads.domain.campaigns import Campaign
from shopstream_platform.errors import InvalidArgumentError

MAX_ID = 128  # order, buyer, click, impression, install, session, request ids
MAX_ENTITY_ID = 64  # campaign, advertiser, product, creator ids (SQL columns of 64)
MAX_NAME = 200
MAX_PROMOTED = 100
MAX_PLACEMENTS = 20
MAX_PLACEMENT = 32
MAX_CONTEXT_PRODUCTS = 100
# Money in minor units: 10^13 minor units (10^11 of a currency) times 1,000 (micro-units) still
# fits int64 with room for sums.
MAX_AMOUNT_MINOR = 10**13


def check_text(value: str, field: str, limit: int, *, required: bool = False) -> None:
    if required and not value:
        raise InvalidArgumentError(field, "is required")
    if len(value) > limit:
        raise InvalidArgumentError(field, f"must be at most {limit} characters")


def check_list(values: Sequence[str], field: str, count: int, each: int) -> None:
    if len(values) > count:
        raise InvalidArgumentError(field, f"at most {count} entries")
    for i, v in enumerate(values):
        if not v:
            raise InvalidArgumentError(f"{field}[{i}]", "must not be empty")
        check_text(v, f"{field}[{i}]", each)


def check_amount(value: int, field: str) -> None:
    if value > MAX_AMOUNT_MINOR:
        raise InvalidArgumentError(field, f"must be at most {MAX_AMOUNT_MINOR} minor units")


def check_campaign(draft: Campaign, request_id: str) -> None:
    check_text(request_id, "request_id", MAX_ID)
    check_text(draft.advertiser_id, "advertiser_id", MAX_ENTITY_ID)
    check_text(draft.name, "name", MAX_NAME)
    check_list(draft.promoted_product_ids, "promoted_product_ids", MAX_PROMOTED, MAX_ENTITY_ID)
    check_list(draft.promoted_creator_ids, "promoted_creator_ids", MAX_PROMOTED, MAX_ENTITY_ID)
    check_list(draft.placements, "placements", MAX_PLACEMENTS, MAX_PLACEMENT)
    check_text(draft.currency, "bid.currency", 3)
    check_amount(draft.bid_minor, "bid.amount_minor")
    check_amount(draft.daily_budget_minor, "daily_budget.amount_minor")
    check_amount(draft.total_budget_minor, "total_budget.amount_minor")


def _check_touch(message: ads_pb2.Impression | ads_pb2.Click, prefix: str, own_id: str) -> None:
    check_text(getattr(message, own_id), f"{prefix}.{own_id}", MAX_ID, required=True)
    check_text(message.campaign_id, f"{prefix}.campaign_id", MAX_ENTITY_ID, required=True)
    check_text(message.buyer_id, f"{prefix}.buyer_id", MAX_ID, required=True)
    check_text(message.placement, f"{prefix}.placement", MAX_PLACEMENT)
    for field in ("install_id", "session_id", "auction_id"):
        check_text(getattr(message, field), f"{prefix}.{field}", MAX_ID)
    check_amount(message.clearing_price.amount_minor, f"{prefix}.clearing_price.amount_minor")
    check_text(message.clearing_price.currency, f"{prefix}.clearing_price.currency", 3)


def check_impression(message: ads_pb2.Impression) -> None:
    _check_touch(message, "impression", "impression_id")


def check_click(message: ads_pb2.Click) -> None:
    _check_touch(message, "click", "click_id")
    check_text(message.impression_id, "click.impression_id", MAX_ID)


def check_select(placement: str, slots: int, context_product_ids: Sequence[str]) -> None:
    check_text(placement, "placement", MAX_PLACEMENT)
    check_list(context_product_ids, "context_product_ids", MAX_CONTEXT_PRODUCTS, MAX_ENTITY_ID)
