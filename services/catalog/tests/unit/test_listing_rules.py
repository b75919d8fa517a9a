from shopstream_catalog.domain.categories import CATEGORIES
from shopstream_catalog.domain.listing_rules import ListingFacts, SellerContext, evaluate_listing
from shopstream_catalog.domain.model import ListingStatus, QualityTier
from shopstream_catalog.settings import ListingRules

RULES = ListingRules()
ESTABLISHED = SellerContext(listings_before=10, tier=QualityTier.GOOD, category_prices=[1000] * 9)


def facts(**overrides: object) -> ListingFacts:
    base: dict[str, object] = {
        "title": "Silk scarf",
        "description": "Hand-rolled edges",
        "brand": "Acme",
        "attributes": {"material": "silk"},
        "category": CATEGORIES["fashion"],
        "min_price_minor": 900,
    }
    base.update(overrides)
    return ListingFacts(**base)  # type: ignore[arg-type]


def test_clean_listing_by_established_seller_is_active() -> None:
    assert evaluate_listing(facts(), ESTABLISHED, RULES).status == ListingStatus.ACTIVE


def test_banned_term_rejects_whole_words_only() -> None:
    decision = evaluate_listing(facts(title="Designer bag REPLICA"), ESTABLISHED, RULES)
    assert decision.status == ListingStatus.REJECTED
    assert decision.reasons[0].code == "BANNED_TERM"
    assert evaluate_listing(
        facts(title="Fakestone garden ornament"), ESTABLISHED, RULES
    ).status == (ListingStatus.ACTIVE)


def test_missing_required_attributes_reject_with_their_names() -> None:
    decision = evaluate_listing(
        facts(category=CATEGORIES["electronics"], attributes={"model": "X1"}), ESTABLISHED, RULES
    )
    assert decision.status == ListingStatus.REJECTED
    assert "warranty_months" in decision.reasons[0].message


def test_a_tenth_of_the_median_price_is_held_for_review() -> None:
    decision = evaluate_listing(facts(min_price_minor=100), ESTABLISHED, RULES)
    assert decision.status == ListingStatus.PENDING_REVIEW
    assert decision.reasons[0].code == "PRICE_FAR_BELOW_MEDIAN"
    assert "10% of the category median" in decision.reasons[0].message


def test_median_needs_enough_listings() -> None:
    few = SellerContext(listings_before=10, tier=QualityTier.GOOD, category_prices=[1000] * 2)
    assert evaluate_listing(facts(min_price_minor=100), few, RULES).status == ListingStatus.ACTIVE


def test_new_and_poor_sellers_are_held() -> None:
    new = SellerContext(listings_before=0, tier=QualityTier.NEW, category_prices=[])
    assert evaluate_listing(facts(), new, RULES).reasons[0].code == "NEW_SELLER"
    poor = SellerContext(listings_before=50, tier=QualityTier.POOR, category_prices=[])
    assert evaluate_listing(facts(), poor, RULES).reasons[0].code == "POOR_SELLER_QUALITY"
