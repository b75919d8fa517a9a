"""Listing quality control: the rules that decide a new or edited listing's status.

Order matters: a hard rule (banned term, missing required attribute) rejects outright; softer
signals (suspiciously cheap, a new or poor-quality seller) hold the listing for a human.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

from shopstream_catalog.domain.model import Category, ListingStatus, QualityTier, Reason
from shopstream_catalog.settings import ListingRules


@dataclass(frozen=True)
class ListingFacts:
    title: str
    description: str
    brand: str
    attributes: dict[str, str]
    category: Category
    # The cheapest SKU price, in minor units of the product's currency.
    min_price_minor: int


@dataclass(frozen=True)
class SellerContext:
    # Listings the seller had before this one.
    listings_before: int
    tier: QualityTier
    # Cheapest-SKU prices of other ACTIVE listings in the category, same currency.
    category_prices: list[int]


@dataclass(frozen=True)
class Decision:
    status: ListingStatus
    reasons: list[Reason]


def _contains_term(text: str, term: str) -> bool:
    return (
        re.search(rf"(?<![a-z0-9]){re.escape(term.lower())}(?![a-z0-9])", text.lower()) is not None
    )


def evaluate_listing(facts: ListingFacts, seller: SellerContext, rules: ListingRules) -> Decision:
    text = " ".join([facts.title, facts.description, facts.brand, *facts.attributes.values()])
    rejections: list[Reason] = []
    for term in rules.banned_terms:
        if _contains_term(text, term):
            rejections.append(Reason("BANNED_TERM", f"listing contains the banned term {term!r}"))
    missing = [
        a for a in facts.category.required_attributes if not facts.attributes.get(a, "").strip()
    ]
    if missing:
        rejections.append(
            Reason(
                "MISSING_ATTRIBUTES",
                f"category {facts.category.category_id} requires: {', '.join(missing)}",
            )
        )
    if rejections:
        return Decision(ListingStatus.REJECTED, rejections)

    holds: list[Reason] = []
    if len(seller.category_prices) >= rules.median_min_listings:
        median = statistics.median(seller.category_prices)
        if median > 0 and facts.min_price_minor < median * rules.min_price_ratio_to_median:
            pct = 100 * facts.min_price_minor / median
            holds.append(
                Reason(
                    "PRICE_FAR_BELOW_MEDIAN",
                    f"price is {pct:.0f}% of the category median ({int(median)}): possible counterfeit",
                )
            )
    if seller.listings_before < rules.new_seller_review_count:
        holds.append(
            Reason(
                "NEW_SELLER",
                f"a new seller's first {rules.new_seller_review_count} listings are reviewed",
            )
        )
    if seller.tier == QualityTier.POOR:
        holds.append(Reason("POOR_SELLER_QUALITY", "the seller's quality tier is POOR"))
    if holds:
        return Decision(ListingStatus.PENDING_REVIEW, holds)
    return Decision(ListingStatus.ACTIVE, [])
