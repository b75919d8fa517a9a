"""What a day plants for issue 20's "Must show": a seller who ships late (its tier must drop for
late parcels), a cart whose listings sit in different centres (it must ship as two packages);
and how the verdict tells a tier drop."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from deploy_support import REPO, SERVICES, unknown_settings
from rich.console import Console

from shopstream_catalog.domain.fulfilment import storage_fee as fee_over
from shopstream_catalog.settings import CatalogSettings, QualityThresholds
from shopstream_simulator.config import SimConfig
from shopstream_simulator.dashboard import late_shipper_line
from shopstream_simulator.ledger import Ledger
from shopstream_simulator.plan import (
    LATE_SHIPPER_LATE,
    LATE_SHIPPER_ON_TIME,
    PLANTED_INDEX,
    BuyerSession,
    Plan,
)
from shopstream_simulator.verify import tier_dropped
from shopstream_simulator.world import World, WorldSize, build_world


def world(seed: int = 7, size: WorldSize | None = None) -> World:
    return build_world(seed, f"s{seed}", size or WorldSize(), "USD", "US")


def sessions(p: Plan) -> list[BuyerSession]:
    return [a for a in p.actions() if isinstance(a, BuyerSession)]


def test_the_late_shipper_ships_itself_and_refunds_nothing() -> None:
    w = world()
    late = w.late_shipper
    assert late.seller_id == "s7-seller-late"
    assert late.fulfilment == "own_carrier" and late.refund_rate == 0 and not late.advertiser
    listings = [p for p in w.regular_products if p.seller_id == late.seller_id]
    assert len(listings) == 2
    # Its own warehouses (not the platform's centres), priced near the category's median so
    # catalog lists them.
    assert all(set(s.stock) <= {"wh-east", "wh-west"} and s.stock for p in listings for s in p.skus)
    median = w.category_median(late.categories[0])
    assert all(0.5 * median <= p.min_price_minor <= 2 * median for p in listings)


def test_the_late_shipper_is_judged_good_before_it_ships_late_and_poor_after() -> None:
    """The numbers planted against catalog's thresholds: enough prompt orders for a tier to be
    judged on them alone, then enough late parcels to pass the POOR line for late deliveries."""
    t = QualityThresholds()
    assert t.min_orders_for_tier <= LATE_SHIPPER_ON_TIME
    total = LATE_SHIPPER_ON_TIME + LATE_SHIPPER_LATE
    assert total >= t.min_packages_for_rates
    assert LATE_SHIPPER_LATE / total >= t.poor_late_delivery_rate
    assert LATE_SHIPPER_LATE / total >= t.poor_late_shipment_rate


@pytest.mark.parametrize("duration_s", [25.0, 120.0, 600.0])
def test_the_late_shippers_orders_are_planted_prompt_first_then_late(duration_s: float) -> None:
    p = Plan.for_rate(world(), duration_s, 2.0, "orders")
    late_id = p.world.late_shipper.seller_id
    planted = [s for s in sessions(p) if s.planted == "late_shipper"]
    assert len(planted) == LATE_SHIPPER_ON_TIME + LATE_SHIPPER_LATE
    assert all(s.intent is not None for s in planted)
    intents = [s.intent for s in planted if s.intent is not None]
    assert [i.ship_late for i in intents] == [False] * LATE_SHIPPER_ON_TIME + [
        True
    ] * LATE_SHIPPER_LATE
    assert {p.world.product(i.product_key).seller_id for i in intents} == {late_id}
    # Every order goes all the way: nothing abandoned, refunded or left unpaid.
    assert all(
        not i.abandon and i.refund == "none" and i.retry_with_backup and i.quantity == 1
        for i in intents
    )
    # In the first half: the late ones' ship-by and delivery fit in the rest of the day.
    assert max(s.at for s in planted) < 0.5 * duration_s
    # Nobody else buys from it: an organic refund or cancellation would be another reason.
    organic = [s for s in sessions(p) if s.planted is None and s.intent is not None]
    assert organic
    for s in organic:
        assert s.intent is not None
        keys = {s.intent.product_key, s.intent.extra_product_key} - {None}
        assert all(p.world.product(k).seller_id != late_id for k in keys if k)


def test_every_world_has_a_cart_the_platform_must_split() -> None:
    for seed in range(30):
        w = world(seed, replace(WorldSize(), sellers=7 + seed % 5))
        east, west = w.split_pair
        assert east.seller_id == west.seller_id
        assert w.fulfilled_by_platform(east.seller_id)
        centres = [c.warehouse_id for c in w.fulfilment_centres]
        # No warehouse holds both: catalog can only serve the cart from two.
        assert all(set(s.stock) == {centres[0]} for s in east.skus), seed
        assert all(set(s.stock) == {centres[1]} for s in west.skus), seed


def test_one_split_cart_a_day_of_both_listings() -> None:
    p = Plan.for_rate(world(), 120.0, 2.0, "orders")
    east, west = p.world.split_pair
    carts = [s for s in sessions(p) if s.planted == "split_cart"]
    assert len(carts) == 1
    intent = carts[0].intent
    assert intent is not None
    assert (intent.product_key, intent.extra_product_key) == (east.key, west.key)
    assert not intent.abandon and intent.refund == "none" and not intent.ship_late
    assert carts[0].at < 0.5 * p.duration_s


def test_planting_renumbers_no_other_visit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same seed, same story: the organic visits (and the refund seller's orders) are the ones
    a day had before the late shipper and the split cart were planted."""
    w = world()
    with_them = sessions(Plan.for_rate(w, 120.0, 2.0, "orders"))
    monkeypatch.setattr(Plan, "_issue20_times", lambda self: [])
    without = sessions(Plan.for_rate(w, 120.0, 2.0, "orders"))
    assert [s for s in with_them if s.index < PLANTED_INDEX] == without
    added = [s for s in with_them if s.index >= PLANTED_INDEX]
    assert len(added) == LATE_SHIPPER_ON_TIME + LATE_SHIPPER_LATE + 1
    assert len({s.index for s in with_them}) == len(with_them)


def test_a_tier_drops_when_a_judged_tier_is_followed_by_a_worse_one() -> None:
    ex, good, fair, poor, new = (
        "QUALITY_TIER_EXCELLENT",
        "QUALITY_TIER_GOOD",
        "QUALITY_TIER_FAIR",
        "QUALITY_TIER_POOR",
        "QUALITY_TIER_NEW",
    )
    assert tier_dropped([new, ex, poor])
    assert tier_dropped([new, good, fair])
    assert tier_dropped([ex, fair, poor])
    # Judged POOR from the start: nothing dropped; NEW is no judgement.
    assert not tier_dropped([new, poor])
    assert not tier_dropped([poor, new, poor])
    assert not tier_dropped([new, fair, ex])
    assert not tier_dropped([])


def test_the_live_view_shows_the_late_shippers_tiers() -> None:
    ledger = Ledger()
    ledger.orders["placed_late_shipper"] = 16
    ledger.fulfilment["shipped_late_on_purpose"] = 6
    ledger.late_shipper_tiers.extend(
        [
            (3.0, "QUALITY_TIER_NEW", ["TOO_FEW_ORDERS"]),
            (40.2, "QUALITY_TIER_EXCELLENT", []),
            (71.5, "QUALITY_TIER_POOR", ["LATE_SHIPMENTS", "LATE_DELIVERIES"]),
        ]
    )
    console = Console(record=True, width=200)
    console.print(late_shipper_line(ledger))
    assert console.export_text().strip() == (
        "16 orders, 6 shipped after ship-by → tier NEW → EXCELLENT → POOR "
        "(LATE_SHIPMENTS, LATE_DELIVERIES)"
    )


def test_make_runs_fulfilment_timing_sets_real_settings_and_a_day_of_storage() -> None:
    """deploy/run.sh's exports: each names a setting (a typo would leave a default in force,
    silently), and the storage fee over one charge interval is a real day's fee per unit."""
    exports = dict(
        re.findall(
            r'^export (SHOPSTREAM_\w+)="\$\{\1:-([^}]*)\}"',
            (REPO / "deploy/run.sh").read_text(),
            re.M,
        )
    )
    for svc in SERVICES[:2]:
        names = [n for n in exports if n.startswith(svc.env_prefix)]
        assert names and unknown_settings(svc, names) == [], svc.name
    interval = float(exports["SHOPSTREAM_CATALOG_STORAGE_CHARGE_INTERVAL_S"])
    per_day = int(exports["SHOPSTREAM_CATALOG_STORAGE_FEE_PER_UNIT_DAY_MINOR"])
    real_day = CatalogSettings.model_fields["storage_fee_per_unit_day_minor"].default
    assert fee_over(1_000, interval, per_day) == 1_000 * real_day
    # The late shipper waits for a ship-by only this far off.
    assert float(exports["SHOPSTREAM_COMMERCE_SHIP_WITHIN_S"]) < SimConfig().late_ship_wait_s
