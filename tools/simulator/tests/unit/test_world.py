"""The world built from a seed: reproducible, power-law audiences, every fraudster planted."""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import replace

import pytest

from shopstream_simulator.world import (
    FOLLOWER_MIN,
    MIN_LISTINGS_PER_CATEGORY,
    Creator,
    World,
    WorldSize,
    build_world,
)

ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")  # catalog's id rule


def world(seed: int = 7, size: WorldSize | None = None, run_id: str = "s7") -> World:
    return build_world(seed, run_id, size or WorldSize(), "USD", "US")


def test_the_same_seed_builds_the_same_world() -> None:
    assert world(7) == world(7)


def test_another_seed_builds_another_world() -> None:
    a, b = world(7), world(8)
    assert [s.display_name for s in a.sellers] != [s.display_name for s in b.sellers]
    assert [c.followers for c in a.creators] != [c.followers for c in b.creators]
    assert [p.title for p in a.products] != [p.title for p in b.products]


def test_resizing_one_part_leaves_the_others_alone() -> None:
    small, big = world(7), world(7, replace(WorldSize(), buyers=5_000))
    assert small.sellers == big.sellers
    assert small.products == big.products
    assert small.creators == big.creators
    assert len(big.buyers) == 5_000


def test_ids_derive_from_the_run_id_and_fit_catalog_rules() -> None:
    w = world(run_id="demo-3")
    ids = [s.seller_id for s in w.sellers] + [c.creator_id for c in w.creators]
    ids += [b.buyer_id for b in w.buyers] + [b.install_id for b in w.buyers]
    assert all(ID.match(i) for i in ids)
    assert all(i.startswith("demo-3-") for i in ids if not i.startswith("inst-"))
    assert len(set(ids)) == len(ids)
    assert all(ID.match(sku.code) for p in w.products for sku in p.skus)


def test_followers_follow_a_power_law() -> None:
    followers = sorted(
        (c.followers for c in world(11, replace(WorldSize(), creators=4_000)).creators),
        reverse=True,
    )
    total = sum(followers)
    # A few stars hold most of the audience, and the mean sits far above the median.
    assert sum(followers[: len(followers) // 10]) / total > 0.5
    assert statistics.mean(followers) > 2 * statistics.median(followers)
    assert min(followers) >= 1_000
    # Hill estimator of the tail exponent over the top 10% (the fakes sit at the bottom).
    tail = followers[: len(followers) // 10]
    alpha = len(tail) / sum(math.log(x / tail[-1]) for x in tail)
    assert 0.9 < alpha < 1.6
    assert tail[-1] > 5 * FOLLOWER_MIN


def test_agencies_sign_the_big_accounts_more_often() -> None:
    creators = world(3, replace(WorldSize(), creators=2_000)).creators
    ranked = sorted(creators, key=lambda c: c.followers)
    small, big = ranked[: len(ranked) // 2], ranked[-len(ranked) // 10 :]

    def share(group: list[Creator]) -> float:
        return sum(1 for c in group if c.mcn) / len(group)

    assert share(big) > share(small)


def test_every_category_has_enough_honest_listings_for_the_median_rule() -> None:
    w = world(5, replace(WorldSize(), sellers=3))
    for category in w.categories:
        honest = [p for p in w.regular_products if p.category == category.category_id]
        assert len(honest) >= MIN_LISTINGS_PER_CATEGORY


def test_listings_carry_the_attributes_catalog_requires() -> None:
    categories = pytest.importorskip("shopstream_catalog.domain.categories")
    for product in world().products:
        required = categories.CATEGORIES[product.category].required_attributes
        assert all(product.attributes.get(a) for a in required), product


def test_no_listing_uses_a_banned_term() -> None:
    """Counterfeits must be caught by their price, not by a banned word."""
    settings = pytest.importorskip("shopstream_catalog.settings")
    for product in world().products:
        text = " ".join([product.title, product.description, product.brand]).lower()
        for term in settings.DEFAULT_BANNED_TERMS:
            assert not re.search(rf"(?<![a-z0-9]){re.escape(term)}(?![a-z0-9])", text), (
                product.key,
                term,
            )


def test_counterfeits_are_priced_far_below_the_category_median() -> None:
    w = world()
    assert len(w.counterfeit_products) == WorldSize().counterfeit_listings
    for product in w.counterfeit_products:
        assert product.min_price_minor < 0.3 * w.category_median(product.category)
        assert w.seller(product.seller_id).kind == "counterfeit"
    # Honest listings never look counterfeit.
    for product in w.regular_products:
        assert product.min_price_minor >= 0.3 * w.category_median(product.category)


def test_fake_follower_creators_will_spike_without_engagement() -> None:
    w = world()
    fakes = w.fake_creators
    assert len(fakes) == WorldSize().fake_follower_creators
    for c in fakes:
        after = c.followers * c.spike_factor
        # creator-score: x3 within a day to at least 1,000, engagement under 1% of followers.
        assert after / c.followers_yesterday >= 3 and after >= 1_000
        assert c.engagement_rate * c.view_rate * 3 < 0.01
        assert not c.goes_live
    assert all(c.spike_factor == 1.0 for c in w.creators if not c.fake)


def test_honest_creators_look_authentic() -> None:
    for c in world().creators:
        if not c.fake:
            assert c.followers / c.followers_yesterday < 1.1
            # Three baseline videos keep views well above 2% of followers.
            assert 3 * 0.5 * c.view_rate >= 0.02


def test_the_refund_heavy_seller_and_the_bots_are_there() -> None:
    w = world()
    heavy = w.refund_heavy_seller
    assert heavy.refund_rate >= 0.5
    assert [p for p in w.regular_products if p.seller_id == heavy.seller_id]
    assert all(s.refund_rate < 0.1 for s in w.sellers if s.kind == "regular")
    assert len(w.bots) == WorldSize().bots
    for bot in w.bots:
        assert bot.clicks >= 100
        # Rotating accounts keep each under a 20-per-minute buyer limit; the install does not.
        assert bot.clicks / len(bot.buyer_ids) <= 21
    assert len({b.install_id for b in w.bots}) == len(w.bots)


def test_buyers_mix_consent_and_cards() -> None:
    buyers = world(9, replace(WorldSize(), buyers=5_000)).buyers
    consent = sum(b.tracking_consent for b in buyers) / len(buyers)
    assert 0.55 < consent < 0.75
    assert any(b.card_token.startswith("tok_decline") for b in buyers)
    assert all(b.card_token.startswith("tok_") for b in buyers)


def test_campaigns_promote_their_advertisers_own_honest_listings() -> None:
    w = world()
    assert w.campaigns
    for campaign in w.campaigns:
        seller = w.seller(campaign.seller_id)
        assert seller.advertiser and seller.kind == "regular"
        for key in campaign.product_keys:
            product = w.product(key)
            assert product.seller_id == seller.seller_id and not product.counterfeit
        assert campaign.total_budget_minor >= campaign.daily_budget_minor
        if campaign.bid_type == "CPC":
            assert campaign.bid_minor <= campaign.daily_budget_minor
