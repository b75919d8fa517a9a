"""The applier's Faust plumbing: the app, the creators table, and one agent that routes the
combiner's input batches to the scoring use case (usecases/scoring.py).

The combiner process (inputs.py, shopstream_platform.combiner) reads the raw topics, checks and
re-keys every input per creator and writes one CreatorInputBatch per table partition and window,
in a Kafka transaction. This agent reads those batches (committed ones only); per batch record,
the scoring applies each creator's inputs in order to its state, scores it once and writes it
once. A redelivered batch record is skipped by the state's watermark (domain/state.py).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

from google.protobuf.message import Message

from shopstream.creators.v1 import creators_pb2
from shopstream_creator_score.domain import state as st
from shopstream_creator_score.domain.formula import score
from shopstream_creator_score.metrics import CreatorScoreMetrics
from shopstream_creator_score.settings import CreatorScoreSettings
from shopstream_creator_score.stream.combiner import combiner_group
from shopstream_creator_score.stream.recovery_watch import watch_recovery
from shopstream_creator_score.stream.topics import INPUT_BATCHES_TOPIC, TABLE_PARTITIONS
from shopstream_creator_score.usecases.score_board import ScoreBoard
from shopstream_creator_score.usecases.scoring import Scoring
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
        self.scoring = Scoring(self.creators, board, metrics, self._half_life_s)
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

    # --- routing ----------------------------------------------------------------------------

    async def on_batch(self, event: Event[Message]) -> Outcome:
        """Apply one window of one partition (usecases/scoring.py). A failure ends the worker
        rather than letting the record be dead-lettered: a batch holds a window of inputs, and
        states are changed in place, so nothing of a failed batch may be written or committed."""
        if not accepts_batch(event.meta.source, self._combiner_group, self.settings.service_name):
            return Outcome.IGNORED  # another deployment's combiner, on the same broker
        batch = event.message
        assert isinstance(batch, creators_pb2.CreatorInputBatch)  # the only routed type
        try:
            # The commit barrier's flush waits for this batch rather than writing states it is
            # changing in place (whose score changes it would not have waited for).
            async with self.creators.lock:
                changed = self.scoring.apply_batch(
                    batch, event.partition, event.offset, event.meta.id
                )
        except Exception as exc:
            log.critical("input batch failed; ending the worker", extra={"error": repr(exc)})
            self.app.fail(exc)
            await asyncio.Future()  # never returns: the worker is stopping
            raise
        return Outcome.PROCESSED if changed else Outcome.DUPLICATE
