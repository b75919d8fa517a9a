from shopstream_creator_score.domain import state as st
from shopstream_creator_score.domain.formula import FLAG_SPIKE, FLAGGED_SCORE_CAP, score, tier_for

DAY = 86_400.0
HALF_LIFE = 30 * DAY


def creator(followers: int = 10_000, views: int = 20_000, engagements: int = 1_000) -> st.State:
    s = st.new_state("c1")
    st.apply_profile(s, name="C", followers=followers, mcn="", declared=["beauty"], at=0.0)
    st.apply_content(s, st.ContentCounters("v1", 0.0, views, engagements, 0, 0), 0.0, HALF_LIFE)
    return s


def test_components_are_bounded_and_explain_sales_and_refunds() -> None:
    seller, refunder = creator(), creator()
    for s in (seller, refunder):
        st.apply_sale(
            s,
            amount_minor=50_000,
            by_category={"beauty": 50_000},
            currency="GBP",
            at=10.0,
            half_life_s=HALF_LIFE,
        )
    st.apply_sale(
        refunder,
        amount_minor=-25_000,
        by_category={"beauty": -25_000},
        currency="GBP",
        at=20.0,
        half_life_s=HALF_LIFE,
    )
    good, bad = score(seller, 20.0, HALF_LIFE), score(refunder, 20.0, HALF_LIFE)
    assert all(0 <= v <= 100 for v in good.components.values())
    assert good.components["sales"] > bad.components["sales"]
    assert good.components["quality"] == 100 and bad.components["quality"] < 20
    assert good.total > bad.total
    assert good.category_scores["beauty"] > bad.category_scores["beauty"]


def test_old_sales_fade_with_the_half_life() -> None:
    s = creator()
    st.apply_sale(
        s, amount_minor=100_000, by_category={}, currency="GBP", at=0.0, half_life_s=HALF_LIFE
    )
    assert score(s, 30 * DAY, HALF_LIFE).net_gmv_minor == 50_000


def test_follower_spike_without_engagement_is_flagged_and_capped() -> None:
    s = creator(followers=2_000, views=3_000, engagements=10)
    st.apply_profile(s, name="C", followers=20_000, mcn="", declared=[], at=DAY)
    result = score(s, DAY, HALF_LIFE)
    assert FLAG_SPIKE in result.flags
    assert result.components["authenticity"] == 20
    assert result.total <= FLAGGED_SCORE_CAP


def test_duplicate_event_ids_are_remembered() -> None:
    s = st.new_state("c1")
    assert not st.seen(s, "e1")
    assert st.seen(s, "e1")


def test_content_counters_add_only_their_growth() -> None:
    s = st.new_state("c1")
    st.apply_content(s, st.ContentCounters("v1", 0.0, 100, 10, 0, 0), 0.0, HALF_LIFE)
    st.apply_content(s, st.ContentCounters("v1", 0.0, 150, 12, 0, 0), 0.0, HALF_LIFE)
    st.apply_content(
        s, st.ContentCounters("v1", 0.0, 120, 11, 0, 0), 0.0, HALF_LIFE
    )  # a stale report
    assert s["views"][0] == 150 and s["engagements"][0] == 12


def test_tiers() -> None:
    assert [tier_for(x) for x in (0, 9.9, 10, 59, 72, 99)] == [0, 0, 1, 5, 7, 8]


def test_decayed_sums_do_not_depend_on_arrival_order() -> None:
    events = [(0.0, 100.0), (10 * DAY, 50.0), (3 * DAY, 70.0)]
    forward, backward = [0.0, 0.0], [0.0, 0.0]
    for at, amount in events:
        forward = st.add(forward, amount, at, HALF_LIFE)
    for at, amount in reversed(events):
        backward = st.add(backward, amount, at, HALF_LIFE)
    assert forward[1] == backward[1] and abs(forward[0] - backward[0]) < 1e-9


def live(s: st.State, session: str, *, ended: bool = False, peak: int = 0) -> None:
    st.apply_live(
        s,
        session_id=session,
        started_at=DAY,
        ended=ended,
        peak_viewers=peak,
        at=DAY,
        half_life_s=HALF_LIFE,
    )


def test_a_live_session_is_one_session_and_one_activity_however_it_is_reported() -> None:
    s = creator()
    live(s, "ls-1")
    live(s, "ls-1", ended=True, peak=500)
    # The social platform reports the same session as content: no second activity.
    st.apply_content(s, st.ContentCounters("ls-1", DAY, 800, 40, 0, 0), DAY, HALF_LIFE)
    assert s["live"][:2] == [1, 500]
    reported_once = creator()
    st.apply_content(reported_once, st.ContentCounters("ls-1", DAY, 800, 40, 0, 0), DAY, HALF_LIFE)
    assert s["activity"] == reported_once["activity"]
    assert s["views"] == reported_once["views"]


def test_old_states_without_live_or_ad_fields_still_score() -> None:
    s = creator()
    for key in ("lives", "live", "ad_gmv", "ad_orders"):
        del s[key]  # a table value written before these inputs existed
    live(s, "ls-1")
    st.apply_ad_credit(
        s, amount_minor=100, withdrawn=False, refund=False, at=0.0, half_life_s=HALF_LIFE
    )
    assert s["live"][0] == 1 and s["ad_orders"] == 1


def test_organic_share_is_the_gmv_no_ad_was_credited_for() -> None:
    s = creator()
    st.apply_sale(
        s, amount_minor=10_000, by_category={}, currency="EUR", at=0.0, half_life_s=HALF_LIFE
    )
    assert score(s, 0.0, HALF_LIFE).organic_share == 1.0
    credit = {"at": 0.0, "half_life_s": HALF_LIFE, "refund": False}
    st.apply_ad_credit(s, amount_minor=6_000, withdrawn=False, **credit)
    st.apply_ad_credit(s, amount_minor=-6_000, withdrawn=True, **credit)
    st.apply_ad_credit(s, amount_minor=2_500, withdrawn=False, **credit)
    result = score(s, 0.0, HALF_LIFE)
    assert (result.ad_gmv_minor, result.organic_share, s["ad_orders"]) == (2_500, 0.75, 1)
    # The score itself does not weigh ad-driven sales (documented).
    organic = creator()
    st.apply_sale(
        organic, amount_minor=10_000, by_category={}, currency="EUR", at=0.0, half_life_s=HALF_LIFE
    )
    assert result.total == score(organic, 0.0, HALF_LIFE).total
    assert score(st.new_state("none"), 0.0, HALF_LIFE).organic_share == 0.0
