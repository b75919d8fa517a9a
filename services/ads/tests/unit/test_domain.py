"""The ads rules on their own: auction pricing, screening, attribution choice, ledger, privacy."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from shopstream_ads.domain import attribution as at
from shopstream_ads.domain import ledger as lg
from shopstream_ads.domain import traffic as tr
from shopstream_ads.domain.auction import Candidate, run_auction
from shopstream_ads.domain.campaigns import (
    BidType,
    Campaign,
    Spend,
    Status,
    status_of,
    validate_new,
)
from shopstream_ads.domain.privacy import (
    MICRO,
    Conversion,
    Epoch,
    TrueCell,
    clip,
    cost_micro,
    day_closed,
    discrete_laplace,
    release,
    true_cell,
)
from shopstream_ads.settings import AttributionSettings, TrafficSettings
from shopstream_platform.errors import InvalidArgumentError

T0 = datetime(2026, 11, 1, tzinfo=UTC)
DAY = 86_400.0


def campaign(
    cid: str = "c1",
    *,
    bid: int = 100,
    bid_type: BidType = BidType.CPC,
    daily: int = 1_000,
    total: int = 5_000,
) -> Campaign:
    return Campaign(
        cid,
        "seller-1",
        "sale",
        ("p1",),
        (),
        bid_type,
        bid,
        "USD",
        daily,
        total,
        T0,
        None,
        (),
        False,
        T0,
        T0,
    )


def test_second_price_is_what_keeps_the_rank_and_never_above_the_bid() -> None:
    a = Candidate(campaign("a", bid=200), predicted_ctr=0.05, relevance=1.0)  # eCPM 10,000
    b = Candidate(campaign("b", bid=100), predicted_ctr=0.04, relevance=1.0)  # eCPM 4,000
    c = Candidate(campaign("c", bid=3_000, bid_type=BidType.CPM), predicted_ctr=0.0, relevance=1.0)
    wins = run_auction([b, c, a], slots=2, reserve_minor=1)
    assert [w.candidate.campaign.campaign_id for w in wins] == ["a", "b"]
    # a pays b's eCPM / (its CTR x 1000) + 1 = 4000 / 50 + 1; b pays c's 3000 / 40 + 1.
    assert [w.clearing_price_minor for w in wins] == [81, 76]
    alone = run_auction([b], slots=1, reserve_minor=5)
    assert alone[0].clearing_price_minor == 5  # no competitor: the reserve price


def test_status_follows_pause_budgets_and_schedule() -> None:
    c = campaign()
    assert status_of(c, Spend(), T0) is Status.ACTIVE
    assert status_of(c, Spend(5_000_000, 0), T0) is Status.BUDGET_EXHAUSTED
    assert status_of(c, Spend(1_000_000, 1_000_000), T0) is Status.DAILY_BUDGET_EXHAUSTED
    assert status_of(c.with_paused(True, T0), Spend(), T0) is Status.PAUSED


def test_validation_names_the_wrong_field() -> None:
    with pytest.raises(InvalidArgumentError, match="bid"):
        validate_new(campaign(bid=0), "USD")
    with pytest.raises(InvalidArgumentError, match="total_budget"):
        validate_new(campaign(daily=10, total=5), "USD")
    with pytest.raises(InvalidArgumentError, match="currency"):
        validate_new(campaign(), "EUR")


def test_a_device_burst_flags_the_whole_burst_once() -> None:
    rules = TrafficSettings(burst_window_s=60, device_burst_limit=3)
    state = tr.new_device_state()
    verdicts = []
    for i in range(5):
        click = tr.ClickFacts(f"k{i}", f"b{i}", "c1", 1_000.0 + i)
        verdicts.append(tr.screen_device(state, "i1", click, f"e{i}", rules))
    assert [v[0].reason for v in verdicts] == [0, 0, 0, tr.DEVICE_BURST, tr.DEVICE_BURST]
    # The 4th click shows the burst: the three before it are flagged retroactively, once.
    assert [(v.click_id, v.retroactive) for v in verdicts[3][1:]] == [
        ("k0", True),
        ("k1", True),
        ("k2", True),
    ]
    assert len(verdicts[4]) == 1
    again = tr.screen_device(state, "i1", tr.ClickFacts("k1", "b1", "c1", 1_010.0), "e9", rules)
    assert again[0].reason == tr.DUPLICATE_CLICK_ID
    assert tr.seen_event(state, "e2")


def test_clicks_beat_views_last_touch_and_windows() -> None:
    rules = AttributionSettings()
    state = at.new_buyer_state()
    order_at = 100 * DAY
    at.remember_touch(state, at.CLICK, "old-click", "c1", order_at - 8 * DAY, rules)
    at.remember_touch(state, at.VIEW, "view", "c2", order_at - 3_600, rules)
    consent = at.OrderFacts("o1", order_at, True, frozenset())
    assert at.decide(state, consent, rules).credit == at.Credit(
        at.VIEW, "view", "c2", order_at - 3_600
    )
    at.remember_touch(state, at.CLICK, "click-a", "c1", order_at - 3 * DAY, rules)
    at.remember_touch(state, at.CLICK, "click-b", "c3", order_at - 2 * DAY, rules)
    decision = at.decide(state, consent, rules)
    assert decision.credit is not None and decision.credit.touch_id == "click-b"
    # Without consent: only a click id the order carries.
    no_consent = at.OrderFacts("o2", order_at, False, frozenset({"click-a"}))
    credit = at.decide(state, no_consent, rules).credit
    assert credit is not None and credit.touch_id == "click-a"
    assert at.decide(state, at.OrderFacts("o3", order_at, False, frozenset()), rules).credit is None


def test_an_order_seconds_after_the_click_is_not_a_person() -> None:
    rules = AttributionSettings(min_click_to_order_s=3)
    state = at.new_buyer_state()
    at.remember_touch(state, at.CLICK, "slow", "c1", 1_000.0, rules)
    at.remember_touch(state, at.CLICK, "bot", "c1", 1_999.0, rules)
    decision = at.decide(state, at.OrderFacts("o", 2_000.0, True, frozenset()), rules)
    assert [c.touch_id for c in decision.too_fast] == ["bot"]
    assert decision.credit is not None and decision.credit.touch_id == "slow"


def test_forgetting_a_click_forgets_its_impression() -> None:
    rules = AttributionSettings()
    state = at.new_buyer_state()
    at.remember_touch(state, at.VIEW, "imp", "c1", 10.0, rules)
    at.remember_touch(state, at.CLICK, "clk", "c1", 11.0, rules, via="imp")
    assert at.forget_touch(state, at.CLICK, "clk")
    assert state["touches"] == []
    assert at.is_tainted(state, "imp") and not at.is_tainted(state, "other")


def test_an_impression_forgotten_before_it_arrives_stays_forgotten() -> None:
    """A flagged click can reach the buyer before the impression it came through (they travel
    on different topics): the impression is remembered as tainted, so the order of arrival does
    not decide whether it becomes a view."""
    rules = AttributionSettings()
    state = at.new_buyer_state()
    assert at.forget_touch(state, at.VIEW, "late-imp") == []  # not known yet
    assert at.is_tainted(state, "late-imp")
    # It arrives: a touch (served, counted, charged; a re-send is known) but never credited.
    at.remember_touch(state, at.VIEW, "late-imp", "c1", 100.0, rules)
    order = at.OrderFacts("o1", 200.0, True, frozenset())
    assert at.decide(state, order, rules).credit is None
    at.remember_touch(state, at.VIEW, "fine-imp", "c1", 50.0, rules)
    credit = at.decide(state, order, rules).credit
    assert credit is not None and credit.touch_id == "fine-imp"
    for k in range(at.TAINTED_IDS + 10):
        at.forget_touch(state, at.VIEW, f"imp-{k}")
    assert len(state["tainted"]) == at.TAINTED_IDS  # bounded: the oldest go first
    assert not at.is_tainted(state, "late-imp") and at.is_tainted(state, "imp-265")


def test_the_ledger_never_charges_past_a_budget() -> None:
    c = campaign(bid=400, daily=1_000, total=1_000)
    state = lg.new_ledger_state()
    charges = [lg.apply_served(state, c, lg.CLICK, 10.0, 0) for _ in range(4)]
    assert [a.charge_micros for a in charges] == [400_000, 400_000, 200_000, 0]
    assert charges[2].exhausted == ["total", "daily"]
    assert state["days"][lg.day_of(10.0)][lg.CLICKS] == 4
    lg.apply_void(state, lg.day_of(10.0), 400_000)
    assert state["spent"] == 600_000
    cpm = campaign(bid=2_000, bid_type=BidType.CPM)
    s2 = lg.new_ledger_state()
    assert lg.apply_served(s2, cpm, lg.IMPRESSION, 10.0, 1_500).charge_micros == 1_500
    assert lg.apply_served(s2, cpm, lg.CLICK, 10.0, 0).charge_micros == 0


def test_clipping_bounds_each_conversion_and_k_counts_buyers() -> None:
    assert [clip(a, 10_000) for a in (-500, 0, 9_999, 10_000, 1_000_000)] == [
        0,
        0,
        9_999,
        10_000,
        10_000,
    ]
    cell = true_cell(
        [Conversion("b1", 1_000), Conversion("b1", 1_000_000), Conversion("b2", -20)], 10_000
    )
    assert cell == TrueCell(buyers=2, conversions=3, clipped_gmv_minor=11_000)
    rng = random.Random(7)
    # Two buyers < k = 3: withheld, whatever their orders; three: released.
    assert release(cell, 3, 1.0, 10_000, rng).suppressed
    shown = release(TrueCell(3, 3, 3_000), 3, 1.0, 10_000, rng)
    assert shown.conversions is not None and shown.gmv_minor is not None
    assert shown.conversions >= 0 and shown.gmv_minor >= 0


def test_discrete_laplace_is_integer_centred_with_the_stated_scale() -> None:
    rng = random.Random(11)
    draws = [discrete_laplace(2.0, rng) for _ in range(40_000)]
    assert all(isinstance(d, int) for d in draws)
    assert abs(sum(draws) / len(draws)) < 0.1
    # Two-sided geometric with alpha = e^(-1/2): E|X| = 2 alpha / (1 - alpha^2).
    alpha = math.exp(-0.5)
    assert sum(abs(d) for d in draws) / len(draws) == pytest.approx(
        2 * alpha / (1 - alpha**2), rel=0.05
    )
    # The mass ratio of neighbours is e^(-1/scale): the epsilon-DP property for sensitivity 1.
    p0, p1 = draws.count(0) / len(draws), draws.count(1) / len(draws)
    assert p1 / p0 == pytest.approx(alpha, rel=0.08)


def test_epochs_and_release_days() -> None:
    at = datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
    epoch = Epoch.of(at, 7)
    assert epoch.starts_at <= at < epoch.resets_at
    assert epoch.resets_at - epoch.starts_at == timedelta(days=7)
    assert Epoch.of(epoch.resets_at, 7).index == epoch.index + 1
    assert day_closed("2026-12-05", at, 3_600) and not day_closed("2026-12-05", at, 4 * 3_600)
    assert not day_closed("2026-12-06", at, 0)
    assert cost_micro(0.1) * 10 == cost_micro(1.0) == MICRO


def test_impressions_in_one_line_are_charged_as_one_by_one() -> None:
    """A line of many impressions (counts per clearing price) ends where the same impressions
    applied one at a time end: counts, spend, the budget's cap and the exhaustion events."""
    rng = random.Random(3)
    for _ in range(50):
        c = campaign(bid=1_200, bid_type=BidType.CPM, daily=rng.randint(1, 40), total=10**6)
        prices = [rng.choice([0, 800, 1_000, 1_500]) for _ in range(rng.randint(1, 60))]
        one = lg.new_ledger_state()
        exhausted_one = [
            e for p in prices for e in lg.apply_served(one, c, lg.IMPRESSION, 10.0, p).exhausted
        ]
        many = lg.new_ledger_state()
        counts: dict[int, int] = {}
        for p in prices:
            counts[p] = counts.get(p, 0) + 1
        applied = lg.apply_served_many(many, c, lg.IMPRESSION, 10.0, counts)
        assert (many["spent"], many["days"]) == (one["spent"], one["days"])
        assert applied.charge_micros == one["spent"]
        assert applied.exhausted == exhausted_one


def test_the_ledger_remembers_entries_and_voids_a_click_once() -> None:
    state = lg.new_ledger_state()
    assert lg.first_time(state, "click:1")
    assert not lg.first_time(state, "click:1")
    for i in range(lg.REMEMBERED_ENTRIES):
        lg.first_time(state, f"imps:{i}")
    assert len(state["ids"]) == lg.REMEMBERED_ENTRIES
    assert lg.first_time(state, "click:1")  # long forgotten: bounded memory
    lg.remember_click(state, "click:c1", 40_000, 100.0)
    assert lg.take_click(state, "click:c1") == [40_000, lg.day_of(100.0), 100.0]
    assert lg.take_click(state, "click:c1") is None
    # Clicks past the void horizon are forgotten as new ones come.
    for i in range(600):
        lg.remember_click(state, f"click:{i}", 1, 100.0 + i * 1_000)
    assert lg.take_click(state, "click:0") is None
    assert lg.take_click(state, "click:599") is not None


def test_a_batch_of_touches_is_sorted_and_trimmed_once() -> None:
    rules = AttributionSettings(
        view_window_s=100, click_window_s=100, keep_touches_s=100, max_touches_per_buyer=3
    )
    state = at.new_buyer_state()
    at.add_touches(state, [[at.VIEW, "b", "c1", 50.0, ""], [at.VIEW, "a", "c1", 10.0, ""]], rules)
    at.add_touches(state, [[at.VIEW, "d", "c1", 200.0, ""], [at.VIEW, "c", "c1", 120.0, ""]], rules)
    # Newest last, older than the window before the newest dropped, at most three.
    assert [t[at.TOUCH_ID] for t in state["touches"]] == ["c", "d"]
    assert at.first_time(state, "e1") and not at.first_time(state, "e1")


def test_an_order_too_soon_after_a_click_credits_neither_the_click_nor_its_impression() -> None:
    rules = AttributionSettings()
    state = at.new_buyer_state()
    at.remember_touch(state, at.VIEW, "imp-a", "cpm", 900.0, rules)
    at.remember_touch(state, at.VIEW, "imp-b", "cpm", 990.0, rules)
    at.remember_touch(state, at.CLICK, "clk-b", "cpc", 999.0, rules, via="imp-b")
    order = at.OrderFacts("o1", 1_000.0, True, frozenset())
    decision = at.decide(state, order, rules)
    assert [c.touch_id for c in decision.too_fast] == ["clk-b"]
    # The click's session is not a view worth crediting: the earlier impression is.
    assert decision.credit is not None and decision.credit.touch_id == "imp-a"
    assert at.forget_touch(state, at.CLICK, "clk-b") == ["clk-b", "imp-b"]


def test_each_touch_counts_within_its_own_campaigns_windows() -> None:
    rules = AttributionSettings()
    state = at.new_buyer_state()
    day = 86_400.0
    at.remember_touch(state, at.CLICK, "clk-short", "one-day", 0.0, rules)
    at.remember_touch(state, at.VIEW, "imp-long", "seven-day-views", 0.0, rules)
    windows = {"one-day": (int(day), int(day)), "seven-day-views": (int(7 * day), int(7 * day))}
    order = at.OrderFacts("o1", 2 * day, True, frozenset())
    # Two days on: the 1-day click is out, the view of a campaign with 7-day views is in.
    decision = at.decide(state, order, rules, windows.__getitem__)
    assert decision.credit is not None and decision.credit.touch_id == "imp-long"
    # With the platform's windows (7-day clicks, 1-day views) the click wins.
    default = at.decide(state, order, rules)
    assert default.credit is not None and default.credit.touch_id == "clk-short"
