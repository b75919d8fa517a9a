"""The score board: the search index, score-change watchers and the creators.scores.v1 output.

Fed by the scoring use case (scoring.py: the creators this process owns) and by the copies of
the creators other processes own (stream/copies.py); read by the other use cases. Every summary
carries its state's input watermark `wm` as its version, so whichever source is read late, an
older summary never replaces a newer one.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from shopstream.creators.v1 import creators_pb2
from shopstream_creator_score import convert
from shopstream_creator_score.domain.formula import FORMULA_VERSION, Score
from shopstream_creator_score.domain.state import State
from shopstream_creator_score.metrics import CreatorScoreMetrics
from shopstream_creator_score.search.index import ScoreIndex
from shopstream_creator_score.stream.topics import SCORES_TOPIC
from shopstream_platform.faust_batch import StreamOutputs

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Watcher:
    category: str
    creator_id: str
    queue: asyncio.Queue[creators_pb2.CreatorScoreChanged] = field(default_factory=asyncio.Queue)
    dropped: bool = False


class ScoreBoard:
    def __init__(
        self,
        outputs: StreamOutputs,
        metrics: CreatorScoreMetrics,
        publish_step: float,
        queue_size: int,
    ) -> None:
        self.index = ScoreIndex()
        self._outputs = outputs
        self._metrics = metrics
        self._step = publish_step
        self._queue_size = queue_size
        self._watchers: set[Watcher] = set()

    def load(self, state: State, s: Score) -> None:
        """Index a creator recovered from the table (no publishing)."""
        self.index.upsert(convert.summary(state, s), version_of(state))

    def update(self, state: State, s: Score, source_event_id: str) -> bool:
        """Index the new score; publish and notify watchers when it moved enough. Returns whether
        it was published (the caller records it in the state). The change's acknowledgement is
        awaited with the rest of the batch (faust_batch.py)."""
        self.index.upsert(convert.summary(state, s), version_of(state))
        previous = state.get("published")
        if previous is not None and abs(s.total - previous) < self._step:
            return False
        change = creators_pb2.CreatorScoreChanged(
            creator=convert.creator_pb(state, s),
            previous_score=previous or 0.0,
            formula_version=FORMULA_VERSION,
        )
        # creators.scores.v1 is a public topic: ad-attributed sales leave only through the API's
        # privacy layer (usecases/ad_sales.py), never exact on the topic.
        published = creators_pb2.CreatorScoreChanged()
        published.CopyFrom(change)
        published.creator.ClearField("ad_sales")
        # The id derives from the input event: a replay republishes the same id.
        meta = self._outputs.producer.meta_for(
            change, subject=state["id"], derived_from=f"score:{state['id']}:{source_event_id}"
        )
        self._outputs.publish(SCORES_TOPIC, state["id"], published, meta)
        self._metrics.score_updates.inc()
        self._notify(change)
        return True

    def copied(
        self, state: State, s: Score, change: creators_pb2.CreatorScoreChanged | None
    ) -> bool:
        """Index a creator another process owns, as read from the table's changelog; False when
        the index holds a newer state of it. `change`: the score change the owner published
        since the last copy (exact ad sales; the API releases them), for watchers here."""
        if not self.index.upsert(convert.summary(state, s), version_of(state)):
            return False
        if change is not None:
            self._notify(change)
        return True

    def rank(self, category: str, creator_id: str) -> int:
        """1-based position of the creator in the category's ranking (0 when not in it)."""
        return self.index.rank(category, creator_id)

    def watch(self, category: str, creator_id: str) -> Watcher:
        watcher = Watcher(category, creator_id, asyncio.Queue(self._queue_size))
        self._watchers.add(watcher)
        self._metrics.watchers.set(len(self._watchers))
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)
        self._metrics.watchers.set(len(self._watchers))

    def _notify(self, change: creators_pb2.CreatorScoreChanged) -> None:
        creator = change.creator
        for watcher in list(self._watchers):
            if watcher.creator_id and watcher.creator_id != creator.creator_id:
                continue
            if watcher.category and watcher.category not in creator.categories:
                continue
            try:
                watcher.queue.put_nowait(change)
            except asyncio.QueueFull:
                # A watcher that cannot keep up is cut off rather than slowing the stream.
                watcher.dropped = True
                self.unwatch(watcher)
                log.warning("score watcher dropped: too slow", extra={"category": watcher.category})


def version_of(state: State) -> int:
    """The state's input watermark: it only grows for a creator (one input partition)."""
    return int(state.get("wm", -1))
