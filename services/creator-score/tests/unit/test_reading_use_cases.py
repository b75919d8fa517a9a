"""The use cases that answer reads (usecases/creators.py, marketplace.py, watching.py) over a
score board filled in memory (no broker, no gRPC)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry

from shopstream.creators.v1 import creators_pb2
from shopstream_creator_score import convert
from shopstream_creator_score.domain import state as st
from shopstream_creator_score.domain.formula import score
from shopstream_creator_score.metrics import CreatorScoreMetrics
from shopstream_creator_score.usecases.ad_sales import AdSalesPrivacy, AdSalesReleaser
from shopstream_creator_score.usecases.creators import Creators
from shopstream_creator_score.usecases.marketplace import Marketplace, SearchQuery
from shopstream_creator_score.usecases.score_board import ScoreBoard
from shopstream_creator_score.usecases.watching import Watching
from shopstream_platform.errors import InvalidArgumentError, NotFoundError
from shopstream_platform.grpc.auth import Principal

HALF_LIFE_S = 30 * 86_400.0
SELLER = Principal("seller", "s1")
AUDIT = Principal("admin", "audit")


def creator_state(creator_id: str, followers: int, *, wm: int = 1) -> st.State:
    state = st.new_state(creator_id)
    st.apply_profile(
        state, name=creator_id, followers=followers, mcn="", declared=["beauty"], at=1e9
    )
    st.apply_ad_credit(
        state, amount_minor=10_000, withdrawn=False, refund=False, at=1e9, half_life_s=HALF_LIFE_S
    )
    state["wm"] = wm
    return state


def board_of(states: list[st.State]) -> ScoreBoard:
    board = ScoreBoard(cast(Any, None), CreatorScoreMetrics(CollectorRegistry()), 1.0, 10)
    for state in states:
        board.load(state, score(state, state["updated_at"], HALF_LIFE_S))
    return board


def releaser() -> AdSalesReleaser:
    return AdSalesReleaser(b"secret", AdSalesPrivacy())


def test_get_answers_own_state_and_releases_ad_sales_to_a_seller() -> None:
    states = {"c1": creator_state("c1", 5_000)}
    board = board_of(list(states.values()))
    creators = Creators(board, states.get, lambda _: None, releaser(), HALF_LIFE_S)
    seen = creators.get(SELLER, "c1")
    assert seen.followers == 5_000
    assert seen.ad_sales.withheld  # one ad-credited order: below k
    assert creators.get(AUDIT, "c1").ad_sales.orders == 1
    with pytest.raises(NotFoundError):
        creators.get(SELLER, "nobody")
    with pytest.raises(InvalidArgumentError):
        creators.get(SELLER, "")


def test_get_answers_from_the_owners_copy_when_it_is_newer() -> None:
    own = creator_state("c1", 5_000, wm=1)
    newer = creator_state("c1", 9_000, wm=2)
    copy = convert.creator_pb(newer, score(newer, newer["updated_at"], HALF_LIFE_S))
    creators = Creators(board_of([own]), {"c1": own}.get, lambda _: (2, copy), releaser(), 1.0)
    assert creators.get(AUDIT, "c1").followers == 9_000


def test_search_checks_its_query_and_pages() -> None:
    market = Marketplace(board_of([creator_state(f"c{i}", 1_000 * i) for i in range(1, 6)]), 2, 3)
    first = market.search(SearchQuery(sort="followers"))
    assert [c.creator_id for c in first.creators] == ["c5", "c4"] and first.total == 5
    second = market.search(SearchQuery(sort="followers", page_token=first.next_page_token))
    assert [c.creator_id for c in second.creators] == ["c3", "c2"]
    for bad, field in [
        (SearchQuery(min_followers=-1), "min_followers"),
        (SearchQuery(min_followers=5, max_followers=1), "max_followers"),
        (SearchQuery(min_score=101), "min_score"),
        (SearchQuery(sort=None), "sort_by"),
        (SearchQuery(page_size=-1), "page.page_size"),
        (SearchQuery(page_token="not-a-token"), "page.page_token"),
    ]:
        with pytest.raises(InvalidArgumentError) as raised:
            market.search(bad)
        assert raised.value.field == field


def test_top_checks_category_and_limit() -> None:
    market = Marketplace(board_of([creator_state("c1", 1_000)]), 10, 100)
    assert [c.creator_id for c in market.top("beauty", 0)] == ["c1"]
    with pytest.raises(InvalidArgumentError):
        market.top("", 5)
    with pytest.raises(InvalidArgumentError):
        market.top("beauty", 101)


async def test_watching_releases_each_change_and_leaves_the_board_when_closed() -> None:
    registry = CollectorRegistry()
    board = ScoreBoard(cast(Any, None), CreatorScoreMetrics(registry), 1.0, 10)
    changes = Watching(board, releaser()).changes(SELLER, "", "c1")
    next_change = asyncio.ensure_future(anext(changes))
    await asyncio.sleep(0)  # the watcher is on the board
    assert registry.get_sample_value("shopstream_creator_score_watchers") == 1
    state = creator_state("c1", 5_000)
    result = score(state, state["updated_at"], HALF_LIFE_S)
    exact = convert.creator_pb(state, result)
    board.copied(state, result, creators_pb2.CreatorScoreChanged(creator=exact))
    released = await next_change
    assert released.creator.ad_sales.withheld and exact.ad_sales.orders == 1
    await changes.aclose()
    assert registry.get_sample_value("shopstream_creator_score_watchers") == 0
