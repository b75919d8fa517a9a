"""The combiner: raw input topics in, per-partition batches of a stream worker's inputs out, inside
Kafka transactions.

Why it exists: Faust's per-message path costs 60-95 µs on a 2-core machine (a do-nothing agent
tops out at 10-17k events/s), so a Faust event per raw input cannot reach 50k/s. The combiner is a
separate process on the platform's confluent-kafka client, on the other core: it reads in large
batches, decodes once, dead-letters poison records, re-keys, and gathers every input of a window
into one record per destination partition. The Faust worker then sees a few records per second
and applies many inputs per record, one table write and one score per changed key.

Exactly once between the two: a window's output records, its DLQ records and the source offsets
it consumed are committed in one Kafka transaction (`send_offsets_to_transaction`, KIP-447). A
kill -9 leaves an open transaction that the restarted combiner aborts (same transactional id),
and the inputs are read again from the committed offsets; the worker reads committed records
only (`PlatformFaustApp`), so it never sees an aborted window. Upstream re-sends (an outbox
relaying a row twice) are not this layer's business: the worker's state deduplicates the inputs
that are not idempotent by themselves.

The window adapts: it closes after `min_window_s` while the input is caught up (freshness), and
doubles up to `max_window_s` while every read returns a full batch (a backlog: fewer, larger
output records for the worker, and fewer transactions).

The service-specific part is a `WindowReducer` (pure, no I/O): what to keep of each record and
how to encode a window.

Event time: each window closes with a watermark, the time up to which every source partition has
been read (a partition counts at the Kafka timestamp of its last record read, or at the wall
clock once it is read to its end). A worker whose decisions wait on time (ads' join grace) takes
it as its clock: after an outage the combiner catches up on the backlog at the backlog's own
time, so an input held for another that is further back in the backlog is not given up on
early. Records are timestamped by their producers (CreateTime), all on synchronised clocks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol, TypeVar

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_INVALID,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from google.protobuf.message import DecodeError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from shopstream_platform.child_process import child_settings, die_with_parent
from shopstream_platform.gc_tuning import tune_gc
from shopstream_platform.kafka.cloudevents import (
    CONTENT_TYPE,
    SPECVERSION,
    format_time,
    new_event_id,
)
from shopstream_platform.kafka.codec import UnknownEventTypeError
from shopstream_platform.kafka.dispatch import declared_on as dispatch_declared_on
from shopstream_platform.kafka.dlq import dead_letter_headers, dlq_topic
from shopstream_platform.kafka.events import InvalidEventError
from shopstream_platform.logging import configure_logging
from shopstream_platform.settings import CombinerSettings, KafkaSettings, ServiceSettings

log = logging.getLogger(__name__)

S = TypeVar("S", bound=ServiceSettings)

# Errors that make a record poison: it goes to `<topic>.dlq` inside the window's transaction.
POISON: tuple[type[BaseException], ...] = (
    DecodeError,
    InvalidEventError,
    UnknownEventTypeError,
    UnicodeDecodeError,
    ValueError,
)


@dataclass(frozen=True, slots=True)
class SourceEvent:
    """The CloudEvents headers the combiner reads from a record (scanned once, not parsed)."""

    id: str
    type: str
    time: str
    # The record's Kafka timestamp, in seconds (0 when it has none).
    timestamp: float = 0.0


class WindowReducer(Protocol):
    """What a service keeps of its raw inputs over one window (pure: no I/O)."""

    @property
    def pending(self) -> int:
        """Inputs gathered since the last `take`."""
        ...

    def add(self, topic: str, key: bytes | None, value: bytes, event: SourceEvent) -> bool:
        """Gather one record. Returns False for a type the worker does not use (skipped); raises
        one of `POISON` for a record that can never be processed (dead-lettered)."""
        ...

    def take(self, watermark: float) -> list[tuple[int, bytes]]:
        """The window's output records as (destination partition, value); starts a new window.
        `watermark`: the window's event time (module docstring), 0 while not known yet."""
        ...


def partition_for(key: str, partitions: int) -> int:
    """The partition the platform's producer gives a record with this key (librdkafka's
    consistent_random partitioner: CRC-32 of the key), which is where a Faust table keyed the
    same way keeps the key: a reducer sends each input to its key's table partition."""
    return zlib.crc32(key.encode()) % partitions


def batch_source(group_id: str) -> str:
    """The ce_source of a combiner group's output records. Its worker applies only these: where
    two deployments share a broker (tests, benches, a blue/green switch), each reads the
    other's batches from the same topic too, and must not apply them."""
    return f"shopstream/combiner/{group_id}"


def accepts_batch(source: str, group_id: str, service: str) -> bool:
    """Whether a worker applies a batch record with this ce_source: its own combiner's, or one
    written before batch sources named their group (`<service>-combiner`)."""
    return source == batch_source(group_id) or source == f"{service}-combiner"


class PartitionBatches:
    """A reducer's window: one batch message (with a repeated `inputs` field) per destination
    partition, encoded as records no bigger than `max_record_bytes` (split in halves)."""

    def __init__(
        self,
        new_batch: Callable[[], Any],
        partitions: int,
        max_record_bytes: int,
        *,
        stamp: Callable[[Any, float], None] | None = None,
        tick_s: float | None = None,
    ) -> None:
        """`stamp(batch, now)` writes the window's closing time into each batch; with `tick_s`,
        a partition that got no batch for that long gets an empty one (a tick), so a worker
        whose decisions wait on time (a join grace) reads the time from its input stream and
        decides the same when a record is applied again."""
        self._new_batch = new_batch
        self._partitions = partitions
        self._max_record_bytes = max_record_bytes
        self._stamp = stamp
        self._tick_s = tick_s
        self._last_sent = [0.0] * partitions
        self._batches: dict[int, Any] = {}
        self.pending = 0

    def add(self, key: str) -> Any:
        """A new input in the batch of `key`'s partition (counted as pending)."""
        partition = partition_for(key, self._partitions)
        batch = self._batches.get(partition)
        if batch is None:
            batch = self._batches[partition] = self._new_batch()
        self.pending += 1
        return batch.inputs.add()

    def drop_last(self, key: str) -> None:
        """Take back the input `add` just gave for `key` (it turned out to be poison)."""
        del self._batches[partition_for(key, self._partitions)].inputs[-1]
        self.pending -= 1

    def take(self, now: float | None = None) -> list[tuple[int, bytes]]:
        """The window's batches (and ticks, see `tick_s`), stamped with `now`."""
        if now is not None and self._tick_s is not None:
            for partition, last in enumerate(self._last_sent):
                if partition not in self._batches and now - last >= self._tick_s:
                    self._batches[partition] = self._new_batch()
        out: list[tuple[int, bytes]] = []
        for partition, batch in sorted(self._batches.items()):
            if now is not None:
                self._last_sent[partition] = now
                if self._stamp is not None:
                    self._stamp(batch, now)
            out.extend((partition, chunk) for chunk in self._encode(batch))
        self._batches = {}
        self.pending = 0
        return out

    def _encode(self, batch: Any) -> list[bytes]:
        data: bytes = batch.SerializeToString()
        if len(data) <= self._max_record_bytes or len(batch.inputs) == 1:
            return [data]
        half = len(batch.inputs) // 2
        first, second = self._new_batch(), self._new_batch()
        # Both halves keep everything but the inputs (the closing time).
        for part in (first, second):
            part.CopyFrom(batch)
            del part.inputs[:]
        first.inputs.extend(batch.inputs[:half])
        second.inputs.extend(batch.inputs[half:])
        return [*self._encode(first), *self._encode(second)]


# How long a starting combiner waits for the broker's transaction coordinator, and what it
# waits out (librdkafka does not always flag these retriable when init_transactions gives up).
INIT_TRANSACTIONS_S = 120.0
COORDINATOR_NOT_READY = frozenset(
    {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError._TIMED_OUT,
    }
)


class MissingHeadersError(InvalidEventError):
    """A record without the CloudEvents headers the combiner routes by."""


def scan_headers(headers: Any, timestamp: float = 0.0) -> SourceEvent:
    """ce_id, ce_type and ce_time, without building a dict of every header (confluent-kafka
    gives consumed headers as a list of (name, bytes) pairs); `timestamp`: the record's."""
    if headers and len(headers) >= 5:
        # The platform's producers write ce_specversion, ce_id, ce_type, ce_source, ce_time first.
        (_, _), (n1, v1), (n2, v2), _, (n4, v4) = headers[:5]
        if n1 == "ce_id" and n2 == "ce_type" and n4 == "ce_time" and v1 and v2 and v4:
            return SourceEvent(_text(v1), _text(v2), _text(v4), timestamp)
    ce_id = ce_type = ce_time = ""
    for name, value in headers or ():
        if value is None:
            continue
        if name == "ce_id":
            ce_id = _text(value)
        elif name == "ce_type":
            ce_type = _text(value)
        elif name == "ce_time":
            ce_time = _text(value)
    if not ce_id or not ce_type:
        raise MissingHeadersError("missing CloudEvents header(s) ce_id / ce_type")
    return SourceEvent(ce_id, ce_type, ce_time, timestamp)


def _text(value: str | bytes) -> str:
    return value if isinstance(value, str) else value.decode()


# The consumer loop's rule (a type the registry lists for the topic, or any shopstream type, is
# skipped when unused; anything else is poison), cached: it runs per unrouted record.
declared_on = lru_cache(maxsize=1024)(dispatch_declared_on)


class CombinerMetrics:
    """The combiner process's own series (it runs apart from the service's registry)."""

    def __init__(self, registry: CollectorRegistry, service: str) -> None:
        labels = {"service": service}
        self.records = Counter(
            "shopstream_combiner_records_total",
            "Source records read by the combiner, by outcome",
            ["service", "outcome"],
            registry=registry,
        )
        self.outcomes = {
            o: self.records.labels(service, o) for o in ("gathered", "skipped", "dead_lettered")
        }
        self.windows = Counter(
            "shopstream_combiner_windows_total",
            "Windows committed (one Kafka transaction each)",
            ["service"],
            registry=registry,
        ).labels(**labels)
        self.aborts = Counter(
            "shopstream_combiner_aborted_windows_total",
            "Windows aborted (rebalance, fencing, broker error); their inputs are read again",
            ["service"],
            registry=registry,
        ).labels(**labels)
        self.window_inputs = Histogram(
            "shopstream_combiner_window_inputs",
            "Inputs gathered per committed window",
            ["service"],
            buckets=(1, 10, 100, 1_000, 10_000, 100_000, 1_000_000),
            registry=registry,
        ).labels(**labels)
        self.commit_seconds = Histogram(
            "shopstream_combiner_commit_seconds",
            "Time to produce a window's records and commit its transaction",
            ["service"],
            registry=registry,
        ).labels(**labels)
        self.event_time_behind = Gauge(
            "shopstream_combiner_event_time_behind_seconds",
            "Wall clock minus the watermark of the last window: how far behind its sources the "
            "combiner reads (0 when every source partition is read to its end)",
            ["service"],
            registry=registry,
        ).labels(**labels)
        self.window_s = Gauge(
            "shopstream_combiner_window_seconds",
            "The current adaptive window length",
            ["service"],
            registry=registry,
        ).labels(**labels)


class Combiner:
    """Consume `sources` as group `group_id`, gather through the reducer, and write each window to
    `output` in one transaction with its offsets. Blocking: it owns its process."""

    def __init__(
        self,
        *,
        kafka: KafkaSettings,
        settings: CombinerSettings,
        service: str,
        group_id: str,
        sources: Sequence[str],
        output: str,
        output_type: str,
        reducer: WindowReducer,
        metrics: CombinerMetrics,
        adopt_offsets_from: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """`adopt_offsets_from`: a group whose committed offsets a source partition starts from
        when this group has none yet (the group that read the sources before the combiner
        existed), so an upgrade neither skips nor recounts inputs."""
        self._settings = settings
        self._service = service
        self._group_id = group_id
        self._sources = list(sources)
        self._output = output
        self._output_type = output_type
        self._reducer = reducer
        self._metrics = metrics
        self._clock = clock
        self._wall_clock = wall_clock
        # Event time (`_advance_watermark`): per source partition the Kafka timestamp (ms) of
        # the last record read, and the offset reading started from at its assignment.
        self._read_at: dict[tuple[str, int], int] = {}
        self._starts: dict[tuple[str, int], int] = {}
        self.watermark = 0.0
        self._unknown_since = self._unknown_logged = 0.0
        self._stopping = False
        self._failed = False
        self._window_s = settings.min_window_s
        self._window_started = clock()
        self._dead_letters = 0
        self._seq = 0
        self._adopt_from = adopt_offsets_from
        self._client_config = kafka.client_config()
        self.transactional_id = f"{group_id}.{settings.instance}"
        client = kafka.client_config()
        self._consumer = Consumer(
            {
                **client,
                "group.id": group_id,
                "client.id": f"{service}-combiner",
                # Offsets are committed by the producer's transaction, never by the consumer.
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "session.timeout.ms": settings.session_timeout_ms,
                "enable.partition.eof": False,
                "fetch.max.bytes": 52_428_800,
                "queued.max.messages.kbytes": 262_144,
            }
        )
        self._producer = Producer(
            {
                **client,
                "client.id": f"{service}-combiner",
                "transactional.id": self.transactional_id,
                "transaction.timeout.ms": settings.transaction_timeout_ms,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "compression.type": "lz4",
                "message.max.bytes": settings.max_record_bytes + 65_536,
            }
        )

    # --- lifecycle ------------------------------------------------------------------------

    def stop(self, *_: object) -> None:
        """Finish the window at hand (commit it) and return from `run`."""
        self._stopping = True

    def run(self) -> None:
        self._init_transactions()
        self._consumer.subscribe(
            self._sources, on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        self._producer.begin_transaction()
        log.info(
            "combiner running",
            extra={"group_id": self._group_id, "sources": self._sources, "output": self._output},
        )
        try:
            while not self._stopping:
                batch = self._consumer.consume(
                    num_messages=self._settings.max_batch, timeout=self._settings.poll_timeout_s
                )
                gathered = skipped = 0
                for msg in batch:
                    outcome = self._gather(msg)
                    if outcome is True:
                        gathered += 1
                    elif outcome is False:
                        skipped += 1
                # Counted once per read: a labelled increment per record costs more than a decode.
                self._metrics.outcomes["gathered"].inc(gathered)
                self._metrics.outcomes["skipped"].inc(skipped)
                self._adapt(full=len(batch) >= self._settings.max_batch)
                if self._due():
                    self._commit_window()
            self._commit_window()
        except BaseException:
            self._failed = True
            raise
        finally:
            self._close()

    def _init_transactions(self) -> None:
        """Also aborts a transaction a killed predecessor with the same id left open. A broker
        that has just started answers NOT_COORDINATOR (or times out) while it creates and
        loads its transaction log, for longer than one call waits under load: asked again
        while the error is retriable, for up to INIT_TRANSACTIONS_S, before the process exits
        for its supervisor."""
        deadline = self._clock() + INIT_TRANSACTIONS_S
        while True:
            try:
                self._producer.init_transactions(self._settings.transaction_timeout_ms / 1000)
                return
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                waits = error.retriable() or error.code() in COORDINATOR_NOT_READY
                if not waits or self._clock() >= deadline or self._stopping:
                    raise
                log.warning("combiner transactions not ready yet", extra={"error": str(error)})
                time.sleep(1)

    def _close(self) -> None:
        # Leaving the group revokes the partitions: after a failure that must not commit.
        self._consumer.close()
        # Nothing open, or the broker is gone: then the transaction times out by itself.
        with contextlib.suppress(KafkaException):
            self._producer.abort_transaction(5)

    # --- one record -----------------------------------------------------------------------

    def _gather(self, msg: Message) -> bool | None:
        """True: gathered; False: a type the worker does not use; None: an error or poison."""
        err = msg.error()
        if err is not None:
            if err.fatal():
                raise KafkaException(err)
            log.warning("consume error", extra={"error": str(err)})
            return None
        topic = msg.topic() or ""
        value = msg.value()
        timestamp = msg.timestamp()[1]
        if timestamp > 0:
            self._read_at[(topic, msg.partition() or 0)] = timestamp
        try:
            if value is None:
                raise InvalidEventError("record has no value")
            event = scan_headers(msg.headers(), timestamp / 1000 if timestamp > 0 else 0.0)
            if self._reducer.add(topic, msg.key(), value, event):
                return True
            if not declared_on(topic, event.type):
                raise UnknownEventTypeError(f"ce_type {event.type!r} is not declared on {topic}")
            return False
        except POISON as exc:
            self._dead_letter(msg, exc)
            return None

    def _dead_letter(self, msg: Message, error: BaseException) -> None:
        """In the window's transaction: the DLQ record is committed exactly when the offset is."""
        topic = msg.topic() or ""
        headers = dead_letter_headers(
            msg.headers(),
            topic=topic,
            partition=msg.partition() or 0,
            offset=msg.offset() or 0,
            group=self._group_id,
            error=error,
        )
        self._producer.produce(dlq_topic(topic), msg.value(), msg.key(), headers=headers)
        self._dead_letters += 1
        self._metrics.outcomes["dead_lettered"].inc()
        log.warning(
            "record dead-lettered",
            extra={
                "topic": topic,
                "partition": msg.partition(),
                "offset": msg.offset(),
                "error_type": type(error).__name__,
                "error": str(error)[:200],
            },
        )

    # --- windows --------------------------------------------------------------------------

    def _adapt(self, *, full: bool) -> None:
        s = self._settings
        if full:
            self._window_s = min(s.max_window_s, self._window_s * 2)
        elif self._window_s > s.min_window_s:
            self._window_s = max(s.min_window_s, self._window_s / 2)
        self._metrics.window_s.set(self._window_s)

    def _due(self) -> bool:
        if self._reducer.pending >= self._settings.max_window_inputs:
            return True
        if not self.watermark and self._reducer.pending and not self._advance_watermark():
            # Just started: a window waits (up to `max_window_inputs`) for every partition's
            # first fetch, so its event time is known.
            return False
        return self._clock() - self._window_started >= self._window_s

    def _commit_window(self) -> None:
        """Produce the window's records and commit them with the offsets read so far."""
        started = self._clock()
        self._window_started = started
        assignment = self._consumer.assignment()
        read = self._consumer.position(assignment)
        positions = [tp for tp in read if tp.offset != OFFSET_INVALID]
        inputs = self._reducer.pending
        if not inputs and not self._dead_letters and not positions:
            return
        self._advance_watermark(read)
        try:
            for partition, value in self._reducer.take(self.watermark):
                self._seq += 1
                self._producer.produce(
                    self._output,
                    value,
                    f"{self.transactional_id}:{self._seq}".encode(),
                    partition=partition,
                    headers=self._headers(),
                )
            if positions:
                self._producer.send_offsets_to_transaction(
                    positions,
                    self._consumer.consumer_group_metadata(),
                    self._settings.transaction_timeout_ms / 1000,
                )
            self._producer.commit_transaction(self._settings.transaction_timeout_ms / 1000)
        except KafkaException as exc:
            self._recover(exc)
        else:
            self._metrics.windows.inc()
            self._metrics.window_inputs.observe(inputs)
            self._metrics.commit_seconds.observe(self._clock() - started)
        finally:
            self._dead_letters = 0
            self._producer.begin_transaction()

    def _recover(self, exc: KafkaException) -> None:
        """A window that could not commit: abort it and read its inputs again, or end the process
        (fenced, fatal) for the supervisor to start a new one."""
        error: KafkaError = exc.args[0]
        if error.fatal():
            raise exc
        log.warning("combiner window aborted; reading it again", extra={"error": str(error)})
        # An abort that fails too ends the process: a new one starts from the committed offsets.
        self._producer.abort_transaction(self._settings.transaction_timeout_ms / 1000)
        self._metrics.aborts.inc()
        self._reducer.take(self.watermark)  # drop the window: its inputs are read again below
        assignment = self._consumer.assignment()
        # Read again from older records: their partitions' times are unknown until then.
        for tp in assignment:
            self._read_at.pop((tp.topic, tp.partition), None)
        if assignment:
            committed = self._consumer.committed(assignment, timeout=10)
            for tp in committed:
                if tp.offset >= 0:
                    self._consumer.seek(tp)
                else:
                    # Nothing committed yet for this partition: back to where reading started at
                    # its assignment (an adopted offset, or the log's start for a new group).
                    # The log's start would re-read a shared topic's whole history.
                    start = self._starts.get((tp.topic, tp.partition), OFFSET_BEGINNING)
                    self._consumer.seek(TopicPartition(tp.topic, tp.partition, start))

    def _advance_watermark(self, read: list[TopicPartition] | None = None) -> bool:
        """Move `watermark` to the oldest of the source partitions' times: the timestamp of
        the last record read from a partition behind its end, the wall clock for one read to
        its end (from the high offset of its last fetch: nothing older can come but records
        produced since, which a join grace absorbs). Unknown while a partition behind its end
        has given no record since its assignment: then it stays. Never goes back. Returns
        whether it is known."""
        if read is None:
            read = self._consumer.position(self._consumer.assignment())
        if not read:
            return bool(self.watermark)
        now = oldest = self._wall_clock()
        for tp in read:
            key = (tp.topic, tp.partition)
            offset = tp.offset if tp.offset >= 0 else self._starts.get(key, -1)
            offsets = self._consumer.get_watermark_offsets(tp, cached=True)
            if offsets is not None and 0 <= offsets[1] <= offset:
                continue  # read to its end
            read_at = self._read_at.get(key)
            if read_at is None:
                self._unknown(key, offset, offsets, now)
                return bool(self.watermark)
            oldest = min(oldest, read_at / 1000)
        self.watermark = max(self.watermark, oldest)
        self._unknown_since = 0.0
        self._metrics.event_time_behind.set(now - self.watermark)
        return True

    def _unknown(
        self, key: tuple[str, int], offset: int, offsets: tuple[int, int] | None, now: float
    ) -> None:
        """Say so when the watermark stays unknown (a partition behind its end gives nothing)."""
        if not self._unknown_since:
            self._unknown_since = now
        elif now - self._unknown_since >= 10 and now - self._unknown_logged >= 10:
            self._unknown_logged = now
            log.warning(
                "combiner event time unknown: a partition behind its end gave no record",
                extra={
                    "topic": key[0],
                    "partition": key[1],
                    "offset": offset,
                    "offsets": offsets,
                    "for_s": round(now - self._unknown_since, 1),
                },
            )

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if not partitions:
            return
        committed = consumer.committed(partitions, timeout=10)
        self._starts.update({(tp.topic, tp.partition): tp.offset for tp in committed})
        try:
            self._adopt_offsets(consumer, partitions, committed)
        finally:
            for tp in partitions:
                key = (tp.topic, tp.partition)
                if self._starts.get(key, -1) < 0:
                    # A new group starts at the log's start (auto.offset.reset=earliest).
                    low, _ = consumer.get_watermark_offsets(tp, timeout=10)
                    self._starts[key] = low

    def _adopt_offsets(
        self,
        consumer: Consumer,
        partitions: list[TopicPartition],
        committed: list[TopicPartition],
    ) -> None:
        if self._adopt_from is None:
            return
        fresh = [tp for tp in committed if tp.offset < 0]
        if not fresh:
            return
        request = ConsumerGroupTopicPartitions(
            self._adopt_from, [TopicPartition(tp.topic, tp.partition) for tp in fresh]
        )
        admin = AdminClient(self._client_config)
        found = admin.list_consumer_group_offsets([request])[self._adopt_from].result(timeout=10)
        adopted = {(tp.topic, tp.partition): tp.offset for tp in found.topic_partitions}
        positioned = []
        for tp in partitions:
            offset = adopted.get((tp.topic, tp.partition), -1)
            positioned.append(TopicPartition(tp.topic, tp.partition, offset) if offset >= 0 else tp)
            if offset >= 0:
                self._starts[(tp.topic, tp.partition)] = offset
        if any(tp.offset >= 0 for tp in positioned):
            log.info("combiner adopted committed offsets", extra={"group": self._adopt_from})
            consumer.assign(positioned)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Commit what was read before the partitions go to another member; after this the new
        # owner starts exactly where this window ends. After a failure: nothing (the open
        # transaction is aborted, its inputs are read again).
        if not self._failed:
            self._commit_window()
        for tp in partitions:
            self._read_at.pop((tp.topic, tp.partition), None)
            self._starts.pop((tp.topic, tp.partition), None)

    def _headers(self) -> list[tuple[str, str | bytes | None]]:
        return [
            ("ce_specversion", SPECVERSION),
            ("ce_id", new_event_id()),
            ("ce_type", self._output_type),
            ("ce_source", batch_source(self._group_id)),
            ("ce_time", format_time(datetime.now(UTC))),
            ("content-type", CONTENT_TYPE),
        ]


def run_combiner_process(combiner: Combiner) -> None:
    """Run until SIGTERM/SIGINT (finish and commit the window at hand), in the process's main
    thread. Exits non-zero by raising on an unrecoverable error, for its supervisor."""
    signal.signal(signal.SIGTERM, combiner.stop)
    signal.signal(signal.SIGINT, combiner.stop)
    log.info("combiner process", extra={"pid": os.getpid()})
    combiner.run()


def combiner_main(
    settings_type: type[S], build: Callable[[S, CollectorRegistry], Combiner]
) -> None:
    """The body of a service's combiner entry point (`python -m <service>.stream.combiner`): it
    runs as the child of its service (shopstream_platform.child_process), with its settings."""
    die_with_parent()
    settings = child_settings(settings_type)
    configure_logging(f"{settings.service_name}-combiner", settings.log_level, settings.log_format)
    tune_gc(settings.gc_gen0_threshold)
    registry = CollectorRegistry()
    combiner_settings: CombinerSettings = getattr(settings, "combiner")  # noqa: B009
    if combiner_settings.metrics_port:
        start_http_server(combiner_settings.metrics_port, settings.metrics_host, registry)
    run_combiner_process(build(settings, registry))
