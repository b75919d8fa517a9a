"""CreatorCopies (stream/copies.py): what a process keeps of the creators other processes own,
from their changelog records (no broker: records are handed to it as the consumer would)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from prometheus_client import CollectorRegistry

from shopstream_creator_score.domain import state as st
from shopstream_creator_score.domain.formula import score
from shopstream_creator_score.metrics import CreatorScoreMetrics
from shopstream_creator_score.stream.copies import CreatorCopies
from shopstream_creator_score.usecases.score_board import ScoreBoard
from shopstream_platform.faust_app import make_faust_app
from shopstream_platform.settings import KafkaSettings

HALF_LIFE_S = 30 * 86_400.0
OWNED = frozenset({0})


@dataclass
class Record:
    """What confluent-kafka's Message answers for a changelog record."""

    _partition: int
    _offset: int
    _key: bytes
    _value: bytes

    def error(self) -> None:
        return None

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes:
        return self._value


class Setup:
    def __init__(self, tmp_path: Path) -> None:
        app = make_faust_app(
            "unit-copies",
            KafkaSettings(bootstrap_servers="127.0.0.1:9"),
            store="memory",
            data_dir=tmp_path,
        )
        self.table = app.Table("creators", default=None, partitions=6)
        metrics = CreatorScoreMetrics(CollectorRegistry())
        self.board = ScoreBoard(cast(Any, None), metrics, 1.0, 10)
        self.copies = CreatorCopies(
            kafka=KafkaSettings(bootstrap_servers="127.0.0.1:9"),
            app=app,
            table=self.table,
            owned=lambda: OWNED,
            assigned=asyncio.Event(),
            board=self.board,
            metrics=metrics,
            half_life_s=HALF_LIFE_S,
        )

    def record(self, partition: int, offset: int, state: st.State) -> Record:
        """The changelog record the owner's table writes for this state."""
        topic = self.table.changelog_topic
        key, _ = topic.prepare_key(state["id"], self.table.key_serializer)
        value, _ = topic.prepare_value(state, self.table.value_serializer)
        return Record(partition, offset, key, value)

    def apply(self, record: Record) -> None:
        self.copies._apply(cast(Any, record), OWNED)


def state_of(creator_id: str, *, wm: int, sales: int, published: float | None = None) -> st.State:
    state = st.new_state(creator_id)
    st.apply_profile(state, name="Ann", followers=5_000, mcn="", declared=["beauty"], at=1e9)
    for _ in range(sales):
        st.apply_sale(
            state,
            amount_minor=10_000,
            by_category={"beauty": 10_000},
            currency="GBP",
            at=1e9,
            half_life_s=HALF_LIFE_S,
        )
    st.apply_ad_credit(
        state, amount_minor=10_000, withdrawn=False, refund=False, at=1e9, half_life_s=HALF_LIFE_S
    )
    state["wm"] = wm
    state["published"] = published
    return state


def test_a_creator_another_process_owns_answers_as_its_owner_would(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    state = state_of("c1", wm=7, sales=3)
    setup.apply(setup.record(1, 0, state))
    found = setup.copies.get("c1")
    assert found is not None
    wm, creator = found
    expected = score(state, state["updated_at"], HALF_LIFE_S)
    assert wm == 7 and creator.score == expected.total
    assert creator.gmv.amount_minor == 30_000
    # Exact ad sales: the API's privacy layer releases them, as it does for the owner's state.
    assert creator.ad_sales.orders == 1 and creator.ad_sales.gmv.amount_minor == 10_000
    indexed = setup.board.index.get("c1")
    assert indexed is not None and indexed.score == expected.total


def test_an_older_state_read_again_changes_nothing(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    setup.apply(setup.record(1, 5, state_of("c1", wm=7, sales=3)))
    # A partition read again from its start: the first, older state of the creator.
    setup.apply(setup.record(1, 1, state_of("c1", wm=3, sales=1)))
    found = setup.copies.get("c1")
    assert found is not None and found[1].gmv.amount_minor == 30_000
    indexed = setup.board.index.get("c1")
    assert indexed is not None and indexed.gmv_minor == 30_000


def test_an_own_partition_is_read_only_up_to_the_hand_over(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    # Gained partition 0 when its changelog ended at offset 10: the old owner's last states
    # are copied, this process's own later writes are not (its agent indexes them).
    setup.copies._handover[0] = 10
    setup.apply(setup.record(0, 9, state_of("old", wm=1, sales=1)))
    setup.apply(setup.record(0, 10, state_of("mine", wm=2, sales=1)))
    assert setup.copies.get("old") is not None and setup.board.index.get("old") is not None
    assert setup.copies.get("mine") is None and setup.board.index.get("mine") is None


def test_watchers_hear_of_the_score_changes_the_owner_published(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    setup.copies._caught_up.set()
    watcher = setup.board.watch("", "c1")
    setup.apply(setup.record(1, 0, state_of("c1", wm=1, sales=1, published=None)))
    setup.apply(setup.record(1, 1, state_of("c1", wm=2, sales=2, published=None)))
    assert watcher.queue.empty()  # the owner published nothing yet
    setup.apply(setup.record(1, 2, state_of("c1", wm=3, sales=3, published=42.0)))
    change = watcher.queue.get_nowait()
    assert change.creator.creator_id == "c1" and change.previous_score == 0.0
    assert change.creator.gmv.amount_minor == 30_000
    setup.apply(setup.record(1, 3, state_of("c1", wm=4, sales=3, published=42.0)))
    assert watcher.queue.empty()  # no new publication


class FakeConsumer:
    """The few confluent-kafka Consumer calls the hand-over makes."""

    def __init__(self, high: dict[int, int]) -> None:
        self.high = high
        self.positions: dict[int, int] = {}
        self.assigned: dict[int, int] = {}

    def get_watermark_offsets(self, tp: TopicPartition, **_: Any) -> tuple[int, int]:
        return 0, self.high.get(tp.partition, 0)

    def position(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        return [
            TopicPartition(tp.topic, tp.partition, self.positions.get(tp.partition, -1001))
            for tp in tps
        ]

    def assign(self, tps: list[TopicPartition]) -> None:
        self.assigned = {tp.partition: tp.offset for tp in tps}


def test_hand_overs_read_what_the_owner_does_not_have(tmp_path: Path) -> None:
    copies = Setup(tmp_path).copies
    consumer = FakeConsumer({p: 5 for p in range(6)} | {3: 0})
    follow = lambda owned: copies._follow(cast(Any, consumer), frozenset(owned))  # noqa: E731
    # At start: the others' partitions from their start, its own not at all.
    copies._start(cast(Any, consumer), frozenset({0, 1, 2}))
    assert consumer.assigned == dict.fromkeys((3, 4, 5), OFFSET_BEGINNING)
    assert copies._targets == {4: 5, 5: 5}  # partition 3 is empty: nothing to wait for
    consumer.positions = {3: -1001, 4: 5, 5: 2}
    follow({0, 1, 2})
    assert copies._targets == {5: 5}
    # Gains 4 (its changelog ends at 8 now) and 5: read on to that end, then no more.
    consumer.high[4] = 8
    follow({0, 1, 2, 4, 5})
    assert copies._handover[4] == 8 and set(consumer.assigned) == {3, 4, 5}
    consumer.positions = {3: -1001, 4: 8, 5: 5}
    follow({0, 1, 2, 4, 5})
    assert consumer.assigned == {3: OFFSET_BEGINNING}  # never fetched: where it started
    # Loses 0: read again from its start (its records were skipped while owned).
    follow({1, 2, 4, 5})
    assert consumer.assigned == {0: OFFSET_BEGINNING, 3: OFFSET_BEGINNING}
    assert 0 not in copies._handover


def test_a_record_that_is_not_a_state_is_left_out(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    setup.apply(Record(1, 0, b'"c1"', b"not json"))
    setup.apply(Record(1, 1, b'"c1"', b"[1, 2]"))
    setup.apply(Record(1, 2, b'"c1"', b'{"id": "c1"}'))  # no fields to score
    assert setup.copies.get("c1") is None and setup.board.index.get("c1") is None
    setup.apply(setup.record(1, 3, state_of("c1", wm=1, sales=1)))
    assert setup.copies.get("c1") is not None
