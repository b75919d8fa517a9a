"""How the world ships (issue 20): each seller's way of shipping, where the platform's stock sits,
buyers' regions, what the centres count in; when a followed order is settled; the live view's
fulfilment panel and its on-time rate per warehouse from commerce's package outcomes."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from rich.console import Console

from shopstream.commerce.v1 import order_pb2
from shopstream_simulator.config import SimConfig
from shopstream_simulator.dashboard import on_time_by_warehouse, render
from shopstream_simulator.ledger import Ledger
from shopstream_simulator.monitor import Snapshot, Telemetry
from shopstream_simulator.scrape import parse
from shopstream_simulator.shipping import Tracked
from shopstream_simulator.warehouses import SHORT_BY, SHORT_SHARE, counted
from shopstream_simulator.world import (
    CATEGORIES,
    FULFILMENT_SHARES,
    WAREHOUSES,
    World,
    WorldSize,
    _products,
    build_world,
)

P = order_pb2.PackageState
S = order_pb2.OrderState


def world(seed: int = 7, size: WorldSize | None = None, run_id: str = "s7") -> World:
    return build_world(seed, run_id, size or WorldSize(), "USD", "US")


def test_every_way_of_shipping_has_sellers_in_proportion() -> None:
    w = world()
    regular = [s for s in w.sellers if s.kind == "regular"]
    ways = Counter(s.fulfilment for s in regular)
    assert set(ways) == set(FULFILMENT_SHARES)
    big = world(size=replace(WorldSize(), sellers=120))
    shares = Counter(s.fulfilment for s in big.sellers if s.kind == "regular")
    for way, share in FULFILMENT_SHARES.items():
        assert abs(shares[way] / 120 - share) < 0.1, (way, shares)
    # The planted sellers keep the way their fraud pattern is watched through.
    assert w.refund_heavy_seller.fulfilment == "own_carrier"
    assert all(s.fulfilment == "sandbox_carrier" for s in w.sellers if s.kind == "counterfeit")


def test_the_smallest_world_still_ships_every_way() -> None:
    for seed in range(20):
        small = world(seed, replace(WorldSize(), sellers=1))  # one shop per category: 7
        ways = {s.fulfilment for s in small.sellers if s.kind == "regular"}
        assert ways == set(FULFILMENT_SHARES), (seed, ways)


def test_platform_stock_sits_in_the_runs_centres_and_only_there() -> None:
    w = world(run_id="demo")
    centres = {c.warehouse_id for c in w.fulfilment_centres}
    assert centres == {"demo-fc-east", "demo-fc-west"}
    assert {c.region for c in w.fulfilment_centres} == {"US-EAST", "US-WEST"}
    platform = [p for p in w.products if w.fulfilled_by_platform(p.seller_id)]
    others = [p for p in w.products if not w.fulfilled_by_platform(p.seller_id)]
    assert platform and others
    assert all(set(sku.stock) <= centres and sku.stock for p in platform for sku in p.skus)
    assert all(set(sku.stock) <= set(WAREHOUSES) for p in others for sku in p.skus)
    # Some listings sit in one centre only, so a cart of two can ship as two packages.
    placements = Counter(frozenset(p.skus[0].stock) for p in platform)
    assert len(placements) >= 2, placements


def test_the_centres_change_where_stock_sits_and_nothing_else() -> None:
    w = world()
    # The late shipper joins after the draw, from streams of its own.
    late = w.late_shipper.seller_id
    drawn = {
        p.key: p
        for p in _products(w.seed, tuple(s for s in w.sellers if s.seller_id != late), CATEGORIES)
    }
    for product in w.regular_products:
        if product.seller_id == late:
            assert product.key not in drawn
            continue
        before = drawn[product.key]
        if not w.fulfilled_by_platform(product.seller_id):
            assert product == before
            continue
        assert replace(product, skus=before.skus) == before
        assert [replace(s, stock={}) for s in product.skus] == [
            replace(s, stock={}) for s in before.skus
        ]
    assert {b.region for b in w.buyers} == {c.region for c in w.fulfilment_centres}


def test_centres_count_in_all_or_a_few_percent_less_the_same_for_every_run() -> None:
    lines = [(f"p{i:04d}-1", region) for i in range(2_000) for region in ("US-EAST", "US-WEST")]
    short = 0
    for code, region in lines:
        got = counted(7, code, region, 400)
        assert got == counted(7, code, region, 400)
        assert 400 * (1 - SHORT_BY[1]) - 1 <= got <= 400
        short += got < 400
    assert abs(short / len(lines) - SHORT_SHARE) < 0.03
    # At least one unit short even when a few percent of the line round to nothing.
    assert all(counted(7, code, region, 1) in (0, 1) for code, region in lines[:200])
    assert any(counted(7, code, region, 1) == 0 for code, region in lines[:200])


def _package(state: int, *, platform: bool = False) -> order_pb2.Package:
    return order_pb2.Package(package_id=f"p{state}", state=state, fulfilled_by_platform=platform)


def test_a_followed_order_is_settled_once_every_parcel_arrived_or_was_lost() -> None:
    on_its_way = Tracked(
        order_pb2.Order(state=S.ORDER_STATE_IN_TRANSIT),
        (_package(P.PACKAGE_STATE_DELIVERED), _package(P.PACKAGE_STATE_IN_TRANSIT)),
    )
    assert not on_its_way.settled and not on_its_way.lost
    waiting = Tracked(
        order_pb2.Order(state=S.ORDER_STATE_PAID),
        (_package(P.PACKAGE_STATE_AWAITING_SHIPMENT, platform=True),),
    )
    assert not waiting.settled
    lost = Tracked(
        order_pb2.Order(state=S.ORDER_STATE_IN_TRANSIT),
        (
            _package(P.PACKAGE_STATE_DELIVERED),
            _package(P.PACKAGE_STATE_LOST),
            _package(P.PACKAGE_STATE_CANCELLED),
        ),
    )
    assert lost.settled and [p.state for p in lost.lost] == [P.PACKAGE_STATE_LOST]
    assert len(lost.live) == 2 and not lost.delivered
    delivered = Tracked(
        order_pb2.Order(state=S.ORDER_STATE_DELIVERED), (_package(P.PACKAGE_STATE_DELIVERED),)
    )
    assert delivered.settled and delivered.delivered
    refunded = Tracked(order_pb2.Order(state=S.ORDER_STATE_REFUNDED), ())
    assert refunded.settled


OUTCOMES_BEFORE = """# TYPE shopstream_commerce_package_outcomes_total counter
shopstream_commerce_package_outcomes_total{warehouse="s7-fc-east",outcome="on_time"} 10.0
"""
OUTCOMES_AFTER = """# TYPE shopstream_commerce_package_outcomes_total counter
shopstream_commerce_package_outcomes_total{warehouse="s7-fc-east",outcome="on_time"} 28.0
shopstream_commerce_package_outcomes_total{warehouse="s7-fc-east",outcome="late"} 1.0
shopstream_commerce_package_outcomes_total{warehouse="s7-fc-east",outcome="lost"} 1.0
shopstream_commerce_package_outcomes_total{warehouse="wh-east",outcome="late"} 4.0
"""


def test_the_live_view_shows_on_time_delivery_per_warehouse_and_the_ledger() -> None:
    snap = Snapshot(
        metrics={"commerce": parse(OUTCOMES_AFTER)}, baseline={"commerce": parse(OUTCOMES_BEFORE)}
    )
    # Over the run: 18 on time, 1 late, 1 lost from the east centre; 4 late from wh-east.
    assert on_time_by_warehouse(snap) == {"s7-fc-east": (20.0, 0.9), "wh-east": (4.0, 0.0)}
    ledger = Ledger()
    ledger.fulfilment.update(
        shipped_by_platform=5,
        shipped_sandbox=12,
        delivered_on_time=15,
        delivered_late=3,
        lost=2,
        inbound_received_units=950,
        inbound_announced_units=1_000,
    )
    telemetry = Telemetry(config=SimConfig(), ledger=ledger, run_id="s7", snapshot=snap)
    console = Console(record=True, width=180)
    console.print(render(telemetry))
    text = console.export_text()
    for expected in (
        "fulfilment: packages, carriers, centres",
        "on time 75%",
        "s7-fc-east 90% of 20",
        "wh-east 0% of 4",
        "inbound 950/1,000",
    ):
        assert expected in text, expected
