"""Creator scores from outside: events in on the real topics, answers through gRPC."""

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest
from creator_steps import T0, Market

from shopstream.creators.v1 import creator_score_service_pb2 as pb

pytestmark = pytest.mark.integration


async def test_the_better_seller_ranks_higher_and_the_components_say_why(
    market: Market, ids: Callable[[str], str]
) -> None:
    a, b = ids("creator-a"), ids("creator-b")
    for creator in (a, b):
        await market.profile(creator, 50_000, categories=("beauty",))
        await market.content(creator, f"{creator}-v1", views=40_000, engagements=2_000)
    for i in range(6):
        await market.sale(a, ids("ord"), 5_000, at=T0 + timedelta(hours=i))
    for i in range(3):
        await market.sale(
            b, ids("ord"), 5_000, refund=5_000 if i < 2 else 0, at=T0 + timedelta(hours=i)
        )

    async def ranked() -> None:
        # All inputs in: A's six sales, B's refunds, both creators' content.
        got_a, got_b = (await market.creator(a)).creator, (await market.creator(b)).creator
        assert got_a.gmv.amount_minor > 29_800 and got_b.components.quality == 0
        assert got_a.components.engagement > 0 and got_b.components.engagement > 0
        # Ranked within beauty: A ahead of B (other tests' creators may rank between them).
        rank_a = next(s.rank for s in got_a.category_strengths if s.category_id == "beauty")
        rank_b = next(s.rank for s in got_b.category_strengths if s.category_id == "beauty")
        assert 1 <= rank_a < rank_b
        top = await market.stub.TopCreators(
            pb.TopCreatorsRequest(category_id="beauty", limit=100),
            metadata=market.auth(),
            timeout=10,
        )
        listed = [c.creator_id for c in top.creators if c.creator_id in (a, b)]
        assert listed == [a, b][: len(listed)]

    await market.eventually(ranked)
    got_a, got_b = (await market.creator(a)).creator, (await market.creator(b)).creator
    assert got_a.score > got_b.score
    # Why: A sold more and kept it; engagement and activity were equal.
    assert got_a.components.sales > got_b.components.sales
    assert got_a.components.quality > got_b.components.quality
    assert got_a.components.engagement == got_b.components.engagement
    assert got_a.formula_version == "v1" and 0 <= got_a.tier <= 8
    [beauty] = [s for s in got_a.category_strengths if s.category_id == "beauty"]
    # 6 x 50.00 over five hours, decayed with a 30-day half-life to the last sale's time.
    assert 29_800 < beauty.gmv.amount_minor < 30_000 and beauty.rank >= 1


async def test_a_tenfold_follower_jump_without_engagement_is_flagged(
    market: Market, ids: Callable[[str], str]
) -> None:
    honest, bought = ids("honest"), ids("bought")
    for creator in (honest, bought):
        await market.profile(creator, 2_000, at=T0)
        await market.content(creator, f"{creator}-v", views=3_000, engagements=150, at=T0)
    await market.profile(honest, 2_200, at=T0 + timedelta(days=1))
    await market.profile(bought, 20_000, at=T0 + timedelta(days=1))

    async def flagged() -> None:
        got = (await market.creator(bought)).creator
        assert "FOLLOWER_SPIKE_WITHOUT_ENGAGEMENT" in got.flags

    await market.eventually(flagged)
    got_bought, got_honest = (
        (await market.creator(bought)).creator,
        (await market.creator(honest)).creator,
    )
    assert got_bought.components.authenticity < got_honest.components.authenticity == 100
    assert not got_honest.flags


async def test_every_event_twice_changes_no_score(
    market: Market, ids: Callable[[str], str]
) -> None:
    creators = [ids("dup") for _ in range(3)]
    for i, creator in enumerate(creators):
        await market.profile(creator, 10_000 * (i + 1))
        await market.content(creator, f"{creator}-v", views=20_000, engagements=500 * (i + 1))
        order = ids("ord")
        await market.sale(creator, order, 3_000 * (i + 1), refund=1_000 if i == 1 else 0)
        await market.live(creator, ids("live"), peak_viewers=100 * (i + 1))
        await market.attribution([creator], order, 3_000 * (i + 1), campaign=ids("camp"))
    last = creators[-1]

    async def settled() -> None:
        got = (await market.creator(last)).creator
        assert got.gmv.amount_minor > 8_000
        assert got.live.peak_viewers == 300 and got.ad_sales.orders == 1

    await market.eventually(settled)

    async def explained(creator: str) -> tuple[object, ...]:
        got = (await market.creator(creator)).creator
        return (got.score, got.live.sessions, got.ad_sales.orders, got.ad_sales.gmv.amount_minor)

    before = {c: await explained(c) for c in creators}
    inputs = market.service.metric("shopstream_creator_score_inputs_total", {"source": "profiles"})
    await market.resend_all()
    sentinel = ids("sentinel")
    await market.profile(sentinel, 1)  # sent after the duplicates: once it is in, they were read

    async def sentinel_in() -> None:
        await market.creator(sentinel)

    await market.eventually(sentinel_in)
    after = {c: await explained(c) for c in creators}
    assert after == before
    # The duplicates were read, not lost: a re-sent profile is applied again without effect (the
    # newest profile wins), re-sent sales and ad credits are skipped by id. Three re-sent
    # profiles and the sentinel's.
    assert (
        market.service.metric("shopstream_creator_score_inputs_total", {"source": "profiles"})
        == inputs + 4
    )


async def test_search_filters_sorts_and_pages(market: Market, ids: Callable[[str], str]) -> None:
    tag = ids("tag")
    people = {
        f"{tag}-1": (5_000, "mcn-a", "beauty", 1_000),
        f"{tag}-2": (50_000, "mcn-a", "beauty", 8_000),
        f"{tag}-3": (80_000, "mcn-b", "beauty", 9_000),
        f"{tag}-4": (60_000, "mcn-a", "fashion", 7_000),
        f"{tag}-5": (40_000, "mcn-a", "beauty", 4_000),
        f"{tag}-6": (45_000, "mcn-a", "beauty", 6_000),
    }
    for creator, (followers, mcn, category, gmv) in people.items():
        await market.profile(creator, followers, mcn=mcn, categories=(category,))
        await market.content(creator, f"{creator}-v", views=followers, engagements=followers // 20)
        await market.sale(creator, ids("ord"), gmv, category=category)

    async def indexed() -> None:
        # Every input of every creator applied: profile, content and the (re-keyed) sale.
        for creator, (followers, _, _, _) in people.items():
            got = (await market.creator(creator)).creator
            assert (
                got.followers == followers
                and got.gmv.amount_minor > 0
                and got.components.engagement > 0
            )

    await market.eventually(indexed)
    expected = [
        c
        for c, (f, m, cat, _) in people.items()
        if cat == "beauty" and m == "mcn-a" and 10_000 <= f <= 55_000
    ]
    scores = {c: (await market.creator(c)).creator.score for c in expected}
    expected.sort(key=lambda c: (-scores[c], c))
    seen: list[str] = []
    token = ""
    while True:
        reply = await market.stub.SearchCreators(
            pb.SearchCreatorsRequest(
                text=tag,
                category_id="beauty",
                mcn_agency="mcn-a",
                min_followers=10_000,
                max_followers=55_000,
                page={"page_size": 2, "page_token": token},
            ),
            metadata=market.auth(),
            timeout=10,
        )
        assert reply.page.total_size == len(expected)
        seen += [c.creator_id for c in reply.creators]
        token = reply.page.next_page_token
        if not token:
            break
    assert seen == expected
    by_followers = await market.stub.SearchCreators(
        pb.SearchCreatorsRequest(text=tag, sort_by=pb.SORT_BY_FOLLOWERS, page={"page_size": 3}),
        metadata=market.auth(),
        timeout=10,
    )
    assert [c.creator_id for c in by_followers.creators] == [f"{tag}-3", f"{tag}-4", f"{tag}-2"]


async def test_watch_scores_streams_changes_of_one_creator(
    market: Market, ids: Callable[[str], str]
) -> None:
    watched, other = ids("watched"), ids("other")
    stream = market.stub.WatchScores(
        pb.WatchScoresRequest(creator_id=watched), metadata=market.auth(), timeout=60
    )
    # Make sure the server registered the watcher before the events flow.
    await asyncio.sleep(0.5)
    await market.profile(other, 1_000)
    await market.profile(watched, 3_000)
    first = await stream.read()
    assert first.change.creator.creator_id == watched
    # A creator is scored once per combiner window: the sale goes in after the first change.
    await market.sale(watched, ids("ord"), 20_000)
    second = await stream.read()
    assert second.change.creator.creator_id == watched
    assert second.change.creator.score > second.change.previous_score == first.change.creator.score
    stream.cancel()


async def test_live_sessions_and_ad_credits_are_counted_once_per_creator(
    market: Market, ids: Callable[[str], str]
) -> None:
    live_only, with_stats, plain = ids("live"), ids("live-stats"), ids("plain")
    sessions = {c: [ids("session"), ids("session")] for c in (live_only, with_stats)}
    for creator in (live_only, with_stats, plain):
        await market.profile(creator, 20_000)
        await market.content(creator, f"{creator}-v", views=30_000, engagements=900)
    for creator, (first, second) in sessions.items():
        await market.live(creator, first, peak_viewers=300, at=T0)
        await market.live(creator, second, peak_viewers=900, at=T0 + timedelta(hours=2))
    # The same two sessions reported by the social platform as content: still two activities.
    for session, started in zip(sessions[with_stats], (T0, T0 + timedelta(hours=2)), strict=True):
        await market.content(with_stats, session, views=1_000, engagements=30, at=started)
    first_order, second_order = ids("ord"), ids("ord")
    await market.sale(live_only, first_order, 10_000)
    await market.sale(live_only, second_order, 10_000)
    # Order 1 is shared with another creator (half each); order 2's credit moves to a later
    # touch (withdrawn, then given again): net 5,000 + 10,000 of 20,000 came through ads.
    await market.attribution([live_only, plain], first_order, 10_000, touch="c1")
    await market.attribution([live_only], second_order, 10_000, touch="c2")
    await market.attribution([live_only], second_order, 10_000, touch="c2", withdrawn=True)
    await market.attribution([live_only], second_order, 10_000, touch="c3")

    async def counted() -> None:
        got = (await market.creator(live_only)).creator
        assert got.live.sessions == 2 and got.live.peak_viewers == 900
        assert got.ad_sales.orders == 2 and got.ad_sales.organic_share == pytest.approx(0.25)
        stats = (await market.creator(with_stats)).creator
        assert stats.live.sessions == 2
        assert (await market.creator(plain)).creator.ad_sales.orders == 1

    await market.eventually(counted)
    got = (await market.creator(live_only)).creator
    # Decayed from the orders' time to the last event's, two hours later.
    assert 14_900 < got.ad_sales.gmv.amount_minor <= 15_000
    assert got.live.last_started_at.ToDatetime(tzinfo=T0.tzinfo) == T0 + timedelta(hours=2)
    # Sessions are activity: more than the creator with one video, and a session reported
    # twice (commerce and the social platform) is still one piece of activity.
    plain_got = (await market.creator(plain)).creator
    stats_got = (await market.creator(with_stats)).creator
    assert got.components.activity > plain_got.components.activity
    assert got.components.activity == pytest.approx(stats_got.components.activity, abs=0.01)
