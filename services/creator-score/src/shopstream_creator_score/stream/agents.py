"""The applier: one Faust agent applies the combiner's input batches to the creators table.

The combiner process (inputs.py, shopstream_platform.combiner) reads the raw topics, checks and
re-keys every input per creator and writes one CreatorInputBatch per table partition and window,
in a Kafka transaction. This agent reads those batches (committed ones only) and, per batch
record, applies each creator's inputs in order to one copy of its state, scores it once and
writes it once. A redelivered batch record is skipped by the state's watermark (state.py).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import Counter
from typing import Any

from google.protobuf.message import Message

from shopstream.creators.v1 import creators_pb2
from shopstream_creator_score.board import ScoreBoard
from shopstream_creator_score.domain import state as st
from shopstream_creator_score.domain.formula import score
from shopstream_creator_score.metrics import CreatorScoreMetrics
from shopstream_creator_score.settings import CreatorScoreSettings
from shopstream_creator_score.stream.combiner import combiner_group
from shopstream_creator_score.stream.recovery_watch import watch_recovery
from shopstream_creator_score.stream.topics import INPUT_BATCHES_TOPIC, TABLE_PARTITIONS
from shopstream_platform.combiner import accepts_batch
from shopstream_platform.faust_app import (
    Batching,
    agent_dispatcher,
    make_faust_app,
    protobuf_agent,
    run_faust_app,
)
from shopstream_platform.faust_batch import BatchedTable, StreamOutputs
from shopstream_platform.kafka.dlq import DeadLetterPublisher
from shopstream_platform.kafka.events import Event, Outcome
from shopstream_platform.metrics import PlatformMetrics

log = logging.getLogger(__name__)

# The metric label of each kind of input.
_SOURCES = {
    "profile": "profiles",
    "content": "content",
    "sale": "sales",
    "live_session": "live",
    "ad_credit": "ads",
}


def _seconds(ts: Any) -> float:
    return float(ts.seconds) + float(ts.nanos) / 1e9


def _time_of(item: creators_pb2.CreatorInput, message: Any) -> float:
    """The input's own time, or the source event's time when it has none."""
    if message.HasField("at"):
        return _seconds(message.at)
    return _seconds(item.event_time)


class ScoreStreams:
    def __init__(
        self,
        settings: CreatorScoreSettings,
        outputs: StreamOutputs,
        dead_letters: DeadLetterPublisher,
        board: ScoreBoard,
        metrics: CreatorScoreMetrics,
        platform_metrics: PlatformMetrics,
    ) -> None:
        self.settings = settings
        self._outputs = outputs
        self.board = board
        self.metrics = metrics
        self._half_life_s = settings.half_life_days * 86_400.0
        self._combiner_group = combiner_group(settings)
        self._inputs = {kind: metrics.inputs.labels(source) for kind, source in _SOURCES.items()}
        self.app = make_faust_app(
            settings.faust_app_id,
            settings.kafka,
            store=settings.store,
            data_dir=settings.data_dir,
            partitions=TABLE_PARTITIONS,
        )
        self.creators = BatchedTable(
            self.app.Table("creators", default=None, partitions=TABLE_PARTITIONS),
            outputs,
            direct_changelog=True,
        )
        dispatcher = agent_dispatcher(
            settings.faust_app_id,
            "inputs",
            {creators_pb2.CreatorInputBatch: self.on_batch},
            dead_letters,
            platform_metrics,
            settings.consumer,
        )
        # A batch record holds a whole window of one partition: a few records per Faust batch.
        # Score changes go out at once; the states reach the store and changelog once per offset
        # commit (every few seconds, and before it), not once per batch: at 10,000 inputs/s the
        # changelog writes of every batch were most of the worker's time.
        protobuf_agent(
            self.app,
            INPUT_BATCHES_TOPIC,
            dispatcher,
            platform_metrics,
            batch=Batching(flush=self._after_batch, max_events=64, within_s=0.01),
        )
        self.app.add_commit_barrier(self.creators.flush)
        # Set once Faust has assigned this process its partitions (possibly none).
        self.assigned = asyncio.Event()
        self.app.on_partitions_assigned.connect(self._on_assigned)

    def _on_assigned(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        self.assigned.set()

    async def _after_batch(self) -> None:
        await self._outputs.check()
        await self.creators.flush_if_over(self.settings.max_dirty_creators)

    # --- lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        await run_faust_app(self.app, self.settings.kafka)

    async def watch_recovery(self) -> None:
        """A runtime task: ends the worker when table recovery stalls (recovery_watch.py)."""
        tables: Any = self.app.tables
        await watch_recovery(tables.recovery, self.app.fail, stall_s=self.settings.recovery_stall_s)
        await asyncio.Future()  # the worker is ending: run_faust_app raises

    async def recovered(self) -> None:
        """Tables restored from their changelogs and the index rebuilt from them."""
        started = time.monotonic()
        tables: Any = self.app.tables
        # Faust's own wait returns at once if recovery has not started yet: poll its flag.
        while not tables.recovery.completed.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        for state in self.creators.values():
            if state is not None:
                self.board.load(state, score(state, state["updated_at"], self._half_life_s))
        self.metrics.creators.set(len(self.board.index))
        # A million long-lived summaries: keep full GC passes over them out of request latency.
        gc.collect()
        gc.freeze()
        self.metrics.recovery_seconds.set(time.monotonic() - started)
        log.info("creator tables recovered", extra={"creators": len(self.board.index)})

    def owned_partitions(self) -> frozenset[int]:
        """The table partitions Faust assigned to this process as active (not standbys): the
        creators it applies inputs to and writes."""
        actives = self.app.assignor.assigned_actives()
        owned = frozenset(tp.partition for tp in actives if tp.topic == INPUT_BATCHES_TOPIC)
        self.metrics.owned_partitions.set(len(owned))
        return owned

    def state_of(self, creator_id: str) -> st.State | None:
        found = self.creators.get(creator_id)
        return st.copy_state(found) if found is not None else None

    # --- applying ---------------------------------------------------------------------------

    async def on_batch(self, event: Event[Message]) -> Outcome:
        """Apply one window of one partition. A failure ends the worker rather than letting the
        record be dead-lettered: a batch holds a window of inputs, and states are changed in
        place (see `_apply_batch`), so nothing of a failed batch may be written or committed."""
        if not accepts_batch(event.meta.source, self._combiner_group, self.settings.service_name):
            return Outcome.IGNORED  # another deployment's combiner, on the same broker
        try:
            # The commit barrier's flush waits for this batch rather than writing states it is
            # changing in place (whose score changes it would not have waited for).
            async with self.creators.lock:
                return self._apply_batch(event)
        except Exception as exc:
            log.critical("input batch failed; ending the worker", extra={"error": repr(exc)})
            self.app.fail(exc)
            await asyncio.Future()  # never returns: the worker is stopping
            raise

    def _apply_batch(self, event: Event[Message]) -> Outcome:
        """Per creator, its inputs in order on its state, then one score and one write. States
        are changed in place, not copied: this agent is the table's only writer, a changelog
        record is serialised when the flush sends it, and a failure ends the worker before any
        later flush (`on_batch`). No await inside: nothing interleaves."""
        batch = event.message
        assert isinstance(batch, creators_pb2.CreatorInputBatch)
        partition, offset = event.partition, event.offset
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
                current = self.creators.get(creator_id, partition)
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
            if self.board.update(state, result, event.meta.id):
                state["published"] = result.total
            self.creators.set(creator_id, state, partition)
            self.metrics.freshness.observe(max(0.0, now - first_at.get(creator_id, now)))
        self.metrics.creators_scored.inc(len(touched))
        for applied_kind, count in applied.items():
            self._inputs[applied_kind].inc(count)
        self.metrics.creators.set(len(self.board.index))
        return Outcome.PROCESSED if touched else Outcome.DUPLICATE

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
