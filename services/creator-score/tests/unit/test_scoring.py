"""Scoring (usecases/scoring.py): an input batch applied to the creators' states, scored and
published once per creator; a batch record applied again changes nothing (no broker)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from shopstream.common.v1 import money_pb2
from shopstream.creators.v1 import creators_pb2
from shopstream.social.v1 import creators_pb2 as social_pb2
from shopstream_creator_score.domain import state as st
from shopstream_creator_score.metrics import CreatorScoreMetrics
from shopstream_creator_score.usecases.score_board import ScoreBoard
from shopstream_creator_score.usecases.scoring import Scoring

HALF_LIFE_S = 30 * 86_400.0
AT = 1_000_000_000


class Table:
    """The creators table's two calls, over a dict."""

    def __init__(self) -> None:
        self.states: dict[str, st.State] = {}
        self.writes = 0

    def get(self, key: Any, partition: int | None = None) -> Any:
        return self.states.get(key)

    def set(self, key: Any, value: Any, partition: int) -> None:
        self.states[key] = value
        self.writes += 1


class Producer:
    def meta_for(self, message: Any, *, subject: str, derived_from: str) -> str:
        return derived_from


class Outputs:
    """What the board publishes through (shopstream_platform.faust_batch.StreamOutputs)."""

    def __init__(self) -> None:
        self.producer = Producer()
        self.published: list[tuple[str, str, Any, str]] = []

    def publish(self, topic: str, key: str, message: Any, meta: str) -> None:
        self.published.append((topic, key, message, meta))


def scoring() -> tuple[Scoring, Table, Outputs]:
    outputs = Outputs()
    metrics = CreatorScoreMetrics(CollectorRegistry())
    board = ScoreBoard(outputs, metrics, 1.0, 10)  # type: ignore[arg-type]  # a stand-in
    table = Table()
    return Scoring(table, board, metrics, HALF_LIFE_S), table, outputs


def batch() -> creators_pb2.CreatorInputBatch:
    profile = creators_pb2.CreatorInput(
        creator_id="c1",
        event_id="p1",
        profile=social_pb2.CreatorProfile(
            creator_id="c1", display_name="Ann", followers=5_000, declared_categories=["beauty"]
        ),
    )
    profile.profile.at.FromSeconds(AT)
    sales = []
    for event_id in ("s1", "s1", "s2"):  # s1 re-sent upstream
        sale = creators_pb2.CreatorInput(
            creator_id="c1",
            event_id=event_id,
            sale=creators_pb2.CreatorSale(
                creator_id="c1",
                amount=money_pb2.Money(amount_minor=10_000, currency="GBP"),
                by_category={"beauty": 10_000},
            ),
        )
        sale.sale.at.FromSeconds(AT)
        sales.append(sale)
    return creators_pb2.CreatorInputBatch(inputs=[profile, *sales])


def test_a_batch_is_applied_scored_and_published_once_per_creator() -> None:
    use_case, table, outputs = scoring()
    assert use_case.apply_batch(batch(), partition=0, offset=5, event_id="b5")
    state = table.states["c1"]
    assert state["wm"] == 5
    assert state["name"] == "Ann"
    assert state["gmv"][st.VALUE] == 20_000.0  # s1 once, s2 once
    assert table.writes == 1
    assert len(outputs.published) == 1
    assert state.get("published") == outputs.published[0][2].creator.score


def test_a_batch_record_applied_again_changes_nothing() -> None:
    use_case, table, outputs = scoring()
    use_case.apply_batch(batch(), partition=0, offset=5, event_id="b5")
    before = st.copy_state(table.states["c1"])
    assert not use_case.apply_batch(batch(), partition=0, offset=5, event_id="b5")
    assert table.states["c1"] == before
    assert table.writes == 1 and len(outputs.published) == 1


def test_a_state_written_before_the_newer_keys_still_applies() -> None:
    """Changelog records of earlier versions lack the keys added since (State's NotRequired)."""
    use_case, table, _ = scoring()
    old = st.new_state("c1")
    for key in ("lives", "live", "ad_gmv", "ad_orders", "wm", "profile_at", "published"):
        del old[key]  # type: ignore[misc]  # the shape an earlier version wrote
    table.states["c1"] = old
    assert use_case.apply_batch(batch(), partition=0, offset=1, event_id="b1")
    assert table.states["c1"]["wm"] == 1
