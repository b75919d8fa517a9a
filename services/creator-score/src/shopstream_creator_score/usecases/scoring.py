"""Scoring: a window of one partition's inputs applied to the creators' states, each creator
scored once, its state written once and its score change published when it moved enough.

The stream (stream/agents.py) routes every input batch record of the combiner here; a batch
record redelivered after a restart is skipped by the states' watermark (domain/state.py).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any, Protocol

from google.protobuf.timestamp_pb2 import Timestamp

from shopstream.creators.v1 import creators_pb2
from shopstream_creator_score.domain import state as st
from shopstream_creator_score.domain.formula import score
from shopstream_creator_score.metrics import CreatorScoreMetrics
from shopstream_creator_score.usecases.score_board import ScoreBoard

# The metric label of each kind of input.
_SOURCES = {
    "profile": "profiles",
    "content": "content",
    "sale": "sales",
    "live_session": "live",
    "ad_credit": "ads",
}


class CreatorTable(Protocol):
    """The creators table as the scoring writes it (shopstream_platform.faust_batch's
    BatchedTable): states by creator id, each written under its partition."""

    def get(self, key: Any, partition: int | None = None) -> Any: ...

    def set(self, key: Any, value: Any, partition: int) -> None: ...


def _seconds(ts: Timestamp) -> float:
    return float(ts.seconds) + float(ts.nanos) / 1e9


def _time_of(item: creators_pb2.CreatorInput, message: Any) -> float:
    """The input's own time, or the source event's time when it has none."""
    if message.HasField("at"):
        return _seconds(message.at)
    return _seconds(item.event_time)


class Scoring:
    def __init__(
        self,
        table: CreatorTable,
        board: ScoreBoard,
        metrics: CreatorScoreMetrics,
        half_life_s: float,
    ) -> None:
        self._table = table
        self._board = board
        self._metrics = metrics
        self._half_life_s = half_life_s
        self._inputs = {kind: metrics.inputs.labels(source) for kind, source in _SOURCES.items()}

    def apply_batch(
        self, batch: creators_pb2.CreatorInputBatch, partition: int, offset: int, event_id: str
    ) -> bool:
        """Per creator, its inputs in order on its state, then one score and one write; False
        when the record changed nothing (applied before a restart). States are changed in
        place, not copied: the stream's agent is the table's only writer, a changelog record is
        serialised when the flush sends it, and a failure ends the worker before any later flush
        (stream/agents.py). No await inside: nothing interleaves."""
        touched: dict[str, st.State] = {}
        first_at: dict[str, float] = {}
        applied: Counter[str] = Counter()
        skipped: set[str] = set()
        for item in batch.inputs:
            creator_id = item.creator_id
            state = touched.get(creator_id)
            if state is None:
                if creator_id in skipped:
                    continue
                current: st.State | None = self._table.get(creator_id, partition)
                if current is not None and current.get("wm", -1) >= offset:
                    skipped.add(creator_id)  # this record was applied before a restart
                    continue
                state = current if current is not None else st.new_state(creator_id)
                st.trim_recent(state)
                touched[creator_id] = state
            kind = item.WhichOneof("input")
            if kind is None:
                continue
            at = self._apply(state, item, kind)
            if creator_id not in first_at:
                first_at[creator_id] = at
            applied[kind] += 1
        now = time.time()
        for creator_id, state in touched.items():
            state["wm"] = offset
            result = score(state, state["updated_at"], self._half_life_s)
            if self._board.update(state, result, event_id):
                state["published"] = result.total
            self._table.set(creator_id, state, partition)
            self._metrics.freshness.observe(max(0.0, now - first_at.get(creator_id, now)))
        self._metrics.creators_scored.inc(len(touched))
        for applied_kind, count in applied.items():
            self._inputs[applied_kind].inc(count)
        self._metrics.creators.set(len(self._board.index))
        return bool(touched)

    def _apply(self, state: st.State, item: creators_pb2.CreatorInput, kind: str) -> float:
        """Apply one input in place; returns its time."""
        hl = self._half_life_s
        if kind == "content":
            c = item.content
            at = _time_of(item, c)
            counters = st.ContentCounters(
                c.content_id,
                _seconds(c.published_at) if c.HasField("published_at") else at,
                c.views,
                c.likes,
                c.comments,
                c.shares,
            )
            st.apply_content(state, counters, at, hl)
        elif kind == "profile":
            p = item.profile
            at = _time_of(item, p)
            st.apply_profile(
                state,
                name=p.display_name,
                followers=p.followers,
                mcn=p.mcn_agency,
                declared=list(p.declared_categories),
                at=at,
            )
        elif kind == "sale":
            sale = item.sale
            at = _time_of(item, sale)
            if not st.seen(state, item.event_id):
                st.apply_sale(
                    state,
                    amount_minor=sale.amount.amount_minor,
                    by_category=dict(sale.by_category),
                    currency=sale.amount.currency,
                    at=at,
                    half_life_s=hl,
                )
        elif kind == "live_session":
            live = item.live_session
            at = _time_of(item, live)
            st.apply_live(
                state,
                session_id=live.live_session_id,
                started_at=_seconds(live.started_at) if live.HasField("started_at") else at,
                ended=live.ended,
                peak_viewers=max(0, live.peak_viewers),
                at=at,
                half_life_s=hl,
            )
        else:
            credit = item.ad_credit
            at = _time_of(item, credit)
            if not st.seen(state, item.event_id):
                st.apply_ad_credit(
                    state,
                    amount_minor=credit.amount.amount_minor,
                    withdrawn=credit.withdrawn,
                    refund=credit.refund,
                    at=at,
                    half_life_s=hl,
                )
        return at
