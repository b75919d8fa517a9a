"""`--day large`: the plan arithmetic that makes a million events in ten minutes out of views,
at an order and auction rate the services sustain."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from shopstream_simulator.config import SimulatorSettings
from shopstream_simulator.lag import service_of
from shopstream_simulator.main import config_from, parser
from shopstream_simulator.monitor import Snapshot
from shopstream_simulator.plan import (
    AD_SLOTS,
    CONVERSION,
    EVENTS_PER_SESSION,
    HOT_STATS_S,
    KIND_SHARES,
    LARGE_DAY,
    NORMAL_DAY,
    P_CLICK,
    BuyerSession,
    ContentReport,
    LiveTick,
    Plan,
    ProfileUpdate,
    StatsTick,
)
from shopstream_simulator.scrape import Samples
from shopstream_simulator.world import WorldSize, build_world


def large_plan(duration_s: float, rate: float = 2_000.0, creators: int = 240) -> Plan:
    size = dataclasses.replace(WorldSize(), creators=creators, buyers=60_000)
    world = build_world(7, "s7", size, "USD", "US")
    return Plan.for_rate(world, duration_s, rate, "events", LARGE_DAY)


def planned_events(p: Plan) -> int:
    """Records and orders the actions make when every auction fills its slots."""
    events = 0
    for a in p.actions():
        if isinstance(a, BuyerSession):
            if a.kind == "ad":
                events += AD_SLOTS * p.day.feed_pages + (1 if a.will_click else 0)
            events += 1 if a.intent is not None else 0
        elif isinstance(a, StatsTick):
            events += len(p.hot_videos(a.at))
        elif isinstance(a, LiveTick):
            events += 2  # live stats, and content stats every third tick (an upper bound)
        elif isinstance(a, ContentReport | ProfileUpdate):
            events += 1
    return events


def test_a_normal_day_is_unchanged() -> None:
    assert NORMAL_DAY.conversion == CONVERSION
    expected = KIND_SHARES["ad"] * (AD_SLOTS + P_CLICK) + CONVERSION
    assert abs(EVENTS_PER_SESSION - expected) < 1e-12


def test_a_large_day_is_a_feed_scroll_of_views_with_few_buyers() -> None:
    # 20 pages of the auction's 2 winners: 40 impressions per ad visit, a 0.4% click-through.
    impressions = AD_SLOTS * LARGE_DAY.feed_pages
    assert impressions == 40 and P_CLICK / impressions == pytest.approx(0.00375)
    assert LARGE_DAY.conversion == pytest.approx(CONVERSION / 4)
    assert LARGE_DAY.events_per_session == pytest.approx(
        KIND_SHARES["ad"] * (impressions + P_CLICK) + CONVERSION / 4
    )
    assert LARGE_DAY.events_per_session == pytest.approx(16.09, abs=0.01)


def test_the_large_preset_plans_over_a_million_events_in_ten_minutes() -> None:
    config = config_from(parser().parse_args(["--day", "large"]), SimulatorSettings())
    assert (config.unit, config.rate, config.duration_s) == ("events", 2_000.0, 600.0)
    assert config.day is LARGE_DAY and config.world.creators == 240
    p = large_plan(config.duration_s, config.rate, config.world.creators)
    assert p.expected_events == pytest.approx(1_200_000, rel=0.01)
    # What the services must sustain: orders and auctions per second.
    orders_per_s = p.session_rate * LARGE_DAY.conversion
    auctions_per_s = p.session_rate * KIND_SHARES["ad"]
    assert 2.0 < orders_per_s < 3.5
    assert auctions_per_s < 40
    # The view counters are about a third of the records: steady, not ramping up from zero.
    assert 500 < p.background_rate() < 800
    hot = [len(p.hot_videos(t)) for t in (0.0, 300.0, 599.0)]
    assert max(hot) < 1.3 * min(hot)


def test_the_actions_make_the_planned_events() -> None:
    """The plan's arithmetic holds for its actions (a minute of the large day)."""
    p = large_plan(60.0)
    assert planned_events(p) == pytest.approx(p.expected_events, rel=0.1)
    assert p.expected_events == pytest.approx(2_000 * 60.0, rel=0.01)
    kinds = Counter(a.kind for a in p.actions() if isinstance(a, BuyerSession))
    assert kinds["ad"] / sum(kinds.values()) == pytest.approx(KIND_SHARES["ad"], abs=0.03)


def test_every_tick_reports_the_hot_videos_with_growing_counters() -> None:
    p = large_plan(60.0)
    ticks = [a for a in p.actions() if isinstance(a, StatsTick)]
    assert [t.at for t in ticks] == [float(s) for s in range(60)]
    seen: dict[str, int] = {}
    for tick in ticks:
        for video in p.hot_videos(tick.at):
            assert tick.at - HOT_STATS_S <= video.published_at <= tick.at
            views = video.counters(tick.at)[0]
            assert views >= seen.get(video.content_id, 0)
            seen[video.content_id] = views


def test_the_lag_counts_only_the_stacks_own_consumer_groups() -> None:
    assert service_of("ads") == "ads"
    assert service_of("ads.combiner") == "ads"
    assert service_of("ads.ads.conversions") == "ads"
    assert service_of("creator-score.combiner") == "creator-score"
    assert service_of("commerce.stock") == "commerce"
    # Tests' and benchmarks' groups on the same broker.
    assert service_of("ads.ads-kill-266d4aaa.conversions") is None
    assert service_of("ads-bench-03507a91") is None
    assert service_of("sample.heartbeats") is None
    # A stack whose services run under other names (the end-to-end test's).
    names = {"ads": "ads-e2e-1f2e3d4c"}
    assert service_of("ads-e2e-1f2e3d4c.combiner", names) == "ads"
    assert service_of("ads.combiner", names) is None


def test_events_behind_is_what_kafka_acknowledged_and_the_workers_did_not_count() -> None:
    def samples(impressions: float, content: float) -> Samples:
        return Samples(
            {
                ("shopstream_ads_impressions_total", (("placement", "feed"),)): impressions,
                ("shopstream_creator_score_inputs_total", (("source", "content"),)): content,
                ("shopstream_creator_score_inputs_total", (("source", "sales"),)): 7.0,
            }
        )

    snapshot = Snapshot()
    snapshot.baseline = {"ads": samples(100, 50), "creator-score": samples(100, 50)}
    snapshot.metrics = {"ads": samples(1_100, 50), "creator-score": samples(100, 350)}
    traffic = Counter({"impressions": 1_150, "bot_impressions": 10, "content_stats": 320})
    snapshot.record_behind(traffic, during_run=True)
    assert snapshot.behind == {"ads": 160, "creator-score": 20}
    snapshot.metrics = {"ads": samples(1_260, 50), "creator-score": samples(100, 370)}
    snapshot.record_behind(traffic, during_run=False)
    assert snapshot.behind == {"ads": 0, "creator-score": 0}
    assert snapshot.max_behind == {"ads": 160, "creator-score": 20}
