"""The run's script: the same seed plays the same story; rates, bursts and fraud are in it."""

from __future__ import annotations

import statistics
from collections import Counter

import pytest

from shopstream_simulator.distributions import BURST_WINDOW_S, bursty_arrivals
from shopstream_simulator.plan import (
    CONVERSION,
    MIN_PLANTED_ORDERS,
    BotBurst,
    BuyerSession,
    ContentReport,
    CounterfeitListing,
    LiveEnd,
    LiveStart,
    LiveTick,
    Plan,
    ProfileUpdate,
)
from shopstream_simulator.world import WorldSize, build_world


def plan(seed: int = 7, duration_s: float = 120.0, rate: float = 2.0) -> Plan:
    world = build_world(seed, f"s{seed}", WorldSize(), "USD", "US")
    return Plan.for_rate(world, duration_s, rate, "orders")


def test_the_same_seed_plays_the_same_story() -> None:
    assert list(plan(7).actions()) == list(plan(7).actions())


def test_another_seed_plays_another_story() -> None:
    a = [x for x in plan(7).actions() if isinstance(x, BuyerSession)]
    b = [x for x in plan(8).actions() if isinstance(x, BuyerSession)]
    assert [(x.at, x.kind) for x in a[:50]] != [(x.at, x.kind) for x in b[:50]]


def test_actions_come_in_time_order_within_the_run() -> None:
    p = plan()
    times = [a.at for a in p.actions()]
    assert times == sorted(times)
    assert times[0] >= 0 and times[-1] < p.duration_s


def test_orders_per_second_match_the_rate_over_a_long_run() -> None:
    p = plan(duration_s=3_600.0, rate=5.0)
    buying = sum(
        1 for a in p.actions() if isinstance(a, BuyerSession) and a.intent and not a.planted
    )
    assert buying == pytest.approx(5.0 * 3_600.0, rel=0.1)
    assert p.session_rate == pytest.approx(5.0 / CONVERSION)


def test_an_events_rate_leaves_room_for_the_background_records() -> None:
    world = build_world(7, "s7", WorldSize(), "USD", "US")
    events = Plan.for_rate(world, 600.0, 50.0, "events")
    assert 0 < events.background_rate() < 50.0
    assert events.session_rate < 50.0


def test_traffic_comes_in_bursts() -> None:
    """Counts per window vary far more than a steady Poisson stream's (variance = mean)."""
    times = list(bursty_arrivals(1, "test", 10.0, 3_000.0))
    counts = Counter(int(t // BURST_WINDOW_S) for t in times)
    per_window = [counts.get(w, 0) for w in range(300)]
    assert statistics.mean(per_window) == pytest.approx(100.0, rel=0.15)
    assert statistics.variance(per_window) > 5 * statistics.mean(per_window)


def test_every_kind_of_visit_happens_and_attribution_points_at_real_content() -> None:
    p = plan(duration_s=300.0)
    sessions = [a for a in p.actions() if isinstance(a, BuyerSession)]
    kinds = Counter(s.kind for s in sessions)
    assert set(kinds) == {"ad", "video", "live", "search"}
    for s in sessions:
        if s.kind == "video":
            assert s.video_id in p.videos_by_id
            assert p.videos_by_id[s.video_id].creator_index == s.creator_index
        if s.kind == "live":
            assert s.live_key is not None
            assert p.lives_by_key[s.live_key].live_at(s.at)
        if s.kind == "ad" and s.intent is not None:
            assert s.will_click
        if s.intent is not None:
            assert not p.world.product(s.intent.product_key).counterfeit


def test_the_fraud_is_scheduled_inside_the_run() -> None:
    p = plan(duration_s=90.0)
    actions = list(p.actions())
    world = p.world
    listed = [a for a in actions if isinstance(a, CounterfeitListing)]
    assert [a.product_key for a in listed] == [c.key for c in world.counterfeit_products]
    bursts = [a for a in actions if isinstance(a, BotBurst)]
    assert len(bursts) == len(world.bots)
    for burst in bursts:
        assert burst.at + burst.span_s < p.duration_s
        # The burst fits in the ads burst window (60 s), so the install is over its limit.
        assert burst.span_s <= 60
    spikes = [a for a in actions if isinstance(a, ProfileUpdate) and a.reason == "bought"]
    fakes = {i for i, c in enumerate(world.creators) if c.fake}
    assert {s.creator_index for s in spikes} == fakes
    for spike in spikes:
        creator = world.creators[spike.creator_index]
        assert spike.followers / creator.followers_yesterday >= 3
    planted = [a for a in actions if isinstance(a, BuyerSession) and a.planted == "refund_heavy"]
    assert len(planted) >= MIN_PLANTED_ORDERS
    heavy = world.refund_heavy_seller.seller_id
    assert {world.product(a.intent.product_key).seller_id for a in planted if a.intent} == {heavy}
    # Planted early enough for the refunds to land before the run ends.
    assert max(a.at for a in planted) < 0.6 * p.duration_s


def test_refunds_follow_each_sellers_refund_rate() -> None:
    p = plan(duration_s=1_800.0, rate=4.0)
    heavy = p.world.refund_heavy_seller.seller_id
    outcomes: dict[bool, list[bool]] = {True: [], False: []}
    for a in p.actions():
        if isinstance(a, BuyerSession) and a.intent is not None:
            seller = p.world.product(a.intent.product_key).seller_id
            outcomes[seller == heavy].append(a.intent.refund != "none")
    assert statistics.mean(outcomes[True]) > 0.5
    assert statistics.mean(outcomes[False]) < 0.08


def test_live_shows_and_videos_only_grow() -> None:
    p = plan(duration_s=300.0)
    actions = list(p.actions())
    starts = {a.key for a in actions if isinstance(a, LiveStart)}
    ends = {a.key for a in actions if isinstance(a, LiveEnd)}
    assert starts and starts == ends == {live.key for live in p.lives}
    for live in p.lives:
        ticks = [a.at for a in actions if isinstance(a, LiveTick) and a.key == live.key]
        totals = [live.stats(t)[1] for t in ticks]
        assert totals == sorted(totals) and totals[-1] > 0
    for video in p.videos[:20]:
        reports = [
            a.at
            for a in actions
            if isinstance(a, ContentReport) and a.content_id == video.content_id
        ]
        views = [video.counters(t)[0] for t in reports]
        assert views == sorted(views)
    for video in p.baseline_videos:
        assert video.published_at < 0 and video.counters(0.0)[0] == video.views
