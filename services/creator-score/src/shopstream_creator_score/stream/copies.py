"""Copies of the creators that other processes of the deployment own, so that each process
answers GetCreator, SearchCreators, TopCreators and WatchScores for every creator.

Several processes of one deployment split the creators table's partitions (one Faust group);
each applies and indexes only its own. Each also reads the table's changelog partitions that it
does not own (Faust's assignment of actives, not "has a state": a standby or a stale store is not
ownership) and keeps, per creator, the exact `Creator` message its owner would answer, and the
creator's summary in its search index.

Why the changelog and not `creators.scores.v1`: the public topic carries a score only when it
moved by `publish_step`, so a copy of it is up to a point off (GetCreator and rankings would
differ between processes); it carries no ad sales (the privacy layer needs the exact ones to
release the same answer everywhere); other deployments on the same broker write it too; and it
is deleted after 30 days, so a new process could not see a creator idle that long. The
changelog is this deployment's own (`<faust_app_id>-creators-changelog`), compacted (the last
state of every creator), and holds the exact states the owner's answers are computed from: a
copy scores them with the same code, so it answers the same, as soon as the owner's next
commit has written them (every few seconds).

Order: a creator's states carry their input watermark `wm` (it only grows), and every write to
the index or the copies keeps the newer one, so a partition read again from its start, or a
hand-over racing the new owner's own updates, never goes back in time.
Hand-overs: a partition this process gains is read on to the changelog's end at the moment
of the gain (the old owner's last states, written when it let the partition go), then no more;
one it loses is read again from its start (while it owned it, it read none of it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple, cast

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaException,
    Message,
    TopicPartition,
)
from faust.exceptions import DecodeError

from shopstream.creators.v1 import creators_pb2
from shopstream_creator_score import convert
from shopstream_creator_score.domain.formula import FORMULA_VERSION, score
from shopstream_creator_score.domain.state import State
from shopstream_creator_score.metrics import CreatorScoreMetrics
from shopstream_creator_score.usecases.score_board import ScoreBoard, version_of
from shopstream_platform.faust_app import changelog_specs
from shopstream_platform.kafka.admin import ensure_topics
from shopstream_platform.settings import KafkaSettings

log = logging.getLogger(__name__)

# Records per read, and how long a read waits when nothing comes.
_MAX_BATCH = 2_000
_POLL_TIMEOUT_S = 0.2
# A copy costs ~80 µs of the event loop (JSON decode, score, Creator): gRPC requests get a
# turn after every this many (about a millisecond).
_YIELD_EVERY = 10


class Copy(NamedTuple):
    """A creator as its owner last wrote it: the `Creator` its GetCreator computes (exact ad
    sales, no ranks), serialised (~0.5 KB a creator with the dict entry), and the score it
    last published (a change of it is a score change for watchers)."""

    wm: int
    published: float | None
    creator: bytes


class CreatorCopies:
    def __init__(
        self,
        *,
        kafka: KafkaSettings,
        app: Any,
        table: Any,
        owned: Callable[[], frozenset[int]],
        assigned: asyncio.Event,
        board: ScoreBoard,
        metrics: CreatorScoreMetrics,
        half_life_s: float,
    ) -> None:
        """`app`, `table`: the Faust app and its creators table (topic name, serialisers);
        `owned`: the table partitions Faust assigned to this process right now; `assigned`:
        set once Faust has assigned them the first time."""
        self._kafka = kafka
        self._app = app
        self._topic: str = table.changelog_topic.get_topic_name()
        self._partitions: int = table.partitions
        serializers = app.serializers
        self._key: Callable[[bytes], Any] = lambda raw: serializers.loads_key(
            None, raw, serializer=table.key_serializer
        )
        self._value: Callable[[bytes], Any] = lambda raw: serializers.loads_value(
            None, raw, serializer=table.value_serializer
        )
        self._owned = owned
        self._assigned = assigned
        self._board = board
        self._metrics = metrics
        self._half_life_s = half_life_s
        self._copies: list[dict[str, Copy]] = [{} for _ in range(self._partitions)]
        # Read in the consumer's thread and in the loop, never at the same time (each step of
        # `run` awaits the other).
        self._seen_owned: frozenset[int] = frozenset()
        self._handover: dict[int, int] = {}  # gained partition -> changelog end at the gain
        self._targets: dict[int, int] = {}  # partition -> offset to reach before serving
        self._reading: dict[int, int] = {}  # partition read -> where it was assigned from
        self._caught_up = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="creator-copies")

    # --- reading ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the changelog until cancelled (a runtime task)."""
        loop = asyncio.get_running_loop()
        # The Faust task creates the changelog too; whichever runs first.
        await asyncio.to_thread(ensure_topics, self._kafka, changelog_specs(self._app))
        consumer = Consumer(
            {
                **self._kafka.client_config(),
                # Assigned, never subscribed: the group id names the client, nothing is committed.
                "group.id": f"{self._app.conf.id}.copies",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "enable.partition.eof": False,
            }
        )
        try:
            await self._assigned.wait()
            await loop.run_in_executor(self._executor, self._start, consumer, self._owned())
            while True:
                owned = self._owned()
                await loop.run_in_executor(self._executor, self._follow, consumer, owned)
                if not self._targets and not self._caught_up.is_set():
                    self._caught_up.set()
                    log.info("creator copies caught up", extra={"copies": self.count()})
                records = await loop.run_in_executor(
                    self._executor, consumer.consume, _MAX_BATCH, _POLL_TIMEOUT_S
                )
                for i, record in enumerate(records):
                    self._apply(record, owned)
                    if i % _YIELD_EVERY == _YIELD_EVERY - 1:
                        await asyncio.sleep(0)  # requests wait at most one slice, not a read
                if records:
                    self._metrics.copied_creators.set(self.count())
                    self._metrics.creators.set(len(self._board.index))
        finally:
            await loop.run_in_executor(self._executor, consumer.close)
            self._executor.shutdown(wait=False)

    async def caught_up(self) -> None:
        """A readiness gate: every changelog partition read to its end as of the start."""
        await self._caught_up.wait()

    def _start(self, consumer: Consumer, owned: frozenset[int]) -> None:
        """The partitions others own, from their start. This process's own are not read at
        all: Faust recovers them into the table, and the index is built from it."""
        self._seen_owned = owned
        for p in range(self._partitions):
            if p in owned:
                self._handover[p] = 0  # nothing of it is copied
                continue
            low, high = consumer.get_watermark_offsets(
                TopicPartition(self._topic, p), timeout=10, cached=False
            )
            if high > low:
                self._targets[p] = high
        self._assign(
            consumer, {p: OFFSET_BEGINNING for p in range(self._partitions) if p not in owned}
        )

    def _assign(self, consumer: Consumer, starts: dict[int, int]) -> None:
        self._reading = dict(starts)
        consumer.assign([TopicPartition(self._topic, p, o) for p, o in sorted(starts.items())])

    def _follow(self, consumer: Consumer, owned: frozenset[int]) -> None:
        """Act on a changed assignment: a gained partition is read on to its end at the gain,
        then no more; a lost one is read again from its start. Ticks off partitions read to
        their target. A broker call that fails is tried again at the next read (meanwhile a
        gained partition is read on, which is only more work: the versions keep it right)."""
        gained, lost = owned - self._seen_owned, self._seen_owned - owned
        try:
            ends = {
                p: consumer.get_watermark_offsets(
                    TopicPartition(self._topic, p), timeout=10, cached=False
                )[1]
                for p in gained
            }
            reading = [TopicPartition(self._topic, p) for p in sorted(self._reading)]
            positions = (
                {tp.partition: tp.offset for tp in consumer.position(reading)} if reading else {}
            )
            handover = {**self._handover, **ends}
            starts: dict[int, int] = {}
            for p in range(self._partitions):
                position = positions.get(p, -1)
                if p in lost:
                    starts[p] = OFFSET_BEGINNING
                elif p in owned:
                    # Own: read only what the old owner wrote before the gain.
                    end = handover.get(p, 0)
                    if p in self._reading and end > 0 and position < end:
                        starts[p] = position if position >= 0 else self._reading[p]
                elif p in self._reading:
                    starts[p] = position if position >= 0 else self._reading[p]
                else:
                    starts[p] = OFFSET_BEGINNING
            if lost or starts.keys() != self._reading.keys():
                self._assign(consumer, starts)
        except KafkaException as exc:
            log.warning("changelog hand-over postponed", extra={"error": str(exc)})
            return
        if lost:
            log.info("reading lost partitions again", extra={"partitions": sorted(lost)})
        self._seen_owned = owned
        self._handover = {p: end for p, end in handover.items() if p not in lost}
        for p in list(self._targets):
            if p not in self._reading or positions.get(p, -1) >= self._targets[p]:
                del self._targets[p]

    # --- applying ---------------------------------------------------------------------------

    def _apply(self, record: Message, owned: frozenset[int]) -> None:
        if record.error() is not None:
            log.warning("changelog read error", extra={"error": str(record.error())})
            return
        partition = record.partition() or 0
        offset = record.offset() or 0
        if partition in owned:
            end = self._handover.get(partition)
            if end is not None and offset >= end:
                return  # this process writes these: its agent indexed them already
        raw_key, raw_value = record.key(), record.value()
        if raw_key is None or raw_value is None:
            return
        try:
            creator_id = self._key(raw_key)
            value = self._value(raw_value)
            if not isinstance(creator_id, str) or not isinstance(value, dict):
                raise TypeError(f"not a creator state: {type(value).__name__}")
            # The owner's State, as JSON: a key it lacks is a KeyError below (left out).
            state = cast(State, value)
            known = self._copies[partition].get(creator_id)
            if known is not None and known.wm > version_of(state):
                return
            self._put(partition, creator_id, state, known)
        except (DecodeError, ValueError, TypeError, KeyError) as exc:
            # Its owner's recovery would fail on it too; a copy only leaves it out.
            log.error(
                "changelog record not copied",
                extra={"partition": partition, "offset": offset, "error": repr(exc)},
            )

    def _put(self, partition: int, creator_id: str, state: State, known: Copy | None) -> None:
        result = score(state, state["updated_at"], self._half_life_s)
        creator = convert.creator_pb(state, result)
        published = state.get("published")
        change = None
        if (
            known is not None
            and published is not None
            and published != known.published
            and self._caught_up.is_set()
        ):
            # The owner published a score change since the last copy: watchers here hear of it
            # (once per changelog write: changes within one commit interval arrive as one).
            change = creators_pb2.CreatorScoreChanged(
                creator=creator,
                previous_score=known.published or 0.0,
                formula_version=FORMULA_VERSION,
            )
        self._copies[partition][creator_id] = Copy(
            version_of(state), published, creator.SerializeToString()
        )
        self._board.copied(state, result, change)

    # --- reading the copies -----------------------------------------------------------------

    def get(self, creator_id: str) -> tuple[int, creators_pb2.Creator] | None:
        """The copied creator (exact ad sales, no ranks) and its version, if any."""
        found = None
        for copies in self._copies:  # a handful of partitions: no need to hash the id
            copy = copies.get(creator_id)
            if copy is not None and (found is None or copy.wm > found.wm):
                found = copy
        if found is None:
            return None
        return found.wm, creators_pb2.Creator.FromString(found.creator)

    def count(self) -> int:
        return sum(len(copies) for copies in self._copies)
