"""Batched stream processing: outputs acknowledged once per batch, table writes after them.

A stream handler that publishes outputs and then writes its state must not let the state reach
the table's changelog before the outputs are acknowledged: the state remembers the input's event
id, so after a crash the redelivered input would be skipped as a duplicate and an output lost
for good. Waiting for the acks of every input's outputs before its write was correct but paid a
broker round trip per input (tens of events/s per agent).

Here the round trip is paid once per batch of inputs (`protobuf_agent(..., batch=...)`), or
once per offset commit (`PlatformFaustApp.add_commit_barrier(table.flush)`, with the batch's own
flush only checking for failed outputs: a key changed by every batch is then written once per
commit interval, not once per batch):

- handlers publish through `StreamOutputs.publish` without waiting;
- they write states with `BatchedTable.set`, which keeps the value in an overlay that the next
  `get` sees, and neither in the store nor in the changelog yet;
- at the end of the batch, `flush()` takes the dirty values, waits for the acks of every output
  published so far (all agents: a state set by one agent may carry another's event ids), then
  writes those values to the table's store and changelog, once per key however many inputs
  changed it;
- Faust acknowledges the batch's inputs only after that, and commits their offsets only once the
  changelog records are acknowledged (`ChangelogBarrierProducer`).

A crash anywhere loses only work whose inputs are redelivered: outputs carry ids derived from
their input, so republishing them is absorbed downstream. A failed output raises from `flush()`:
the batch is not acknowledged, and the worker ends (see `protobuf_agent`).

Invariant handlers keep: a state is `set` only after the outputs it accounts for are published,
and a value passed to `set` is not changed in place afterwards (copy, then modify), unless the
handler is the table's only writer and a failure ends the worker (then a value changed in place
is written whole at a later flush, and a half-changed one never: creator-score's applier).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from faust import streams as faust_streams
from faust.types import TP
from google.protobuf.message import Message

from shopstream_platform.kafka.cloudevents import CloudEventMeta
from shopstream_platform.kafka.producer import EventProducer


class OutputFailedError(RuntimeError):
    """An output of a stream handler was not acknowledged by the broker."""


class StreamOutputs:
    """Outputs of stream handlers whose acknowledgements a batch waits for together."""

    def __init__(self, producer: EventProducer) -> None:
        self.producer = producer
        self._unsettled: set[asyncio.Future[None]] = set()
        self._failure: BaseException | None = None
        self._deferred: list[Callable[[], None]] = []

    def defer(self, publish: Callable[[], None]) -> None:
        """Register a handler's coalescing buffer: `publish` sends what it holds. `acked()` runs
        it first, so no state is written before the outputs it accounts for are published, even
        those a handler gathers over several inputs into one record."""
        self._deferred.append(publish)

    def publish(self, topic: str, key: str, message: Message, meta: CloudEventMeta) -> None:
        future = self.producer.publish_acked(topic, key, message, meta)
        self._unsettled.add(future)
        future.add_done_callback(self._settled)

    def _settled(self, future: asyncio.Future[None]) -> None:
        self._unsettled.discard(future)
        if not future.cancelled() and future.exception() is not None and self._failure is None:
            self._failure = future.exception()

    async def check(self) -> None:
        """Raise if an output published so far failed (without waiting for the others)."""
        if self._failure is not None:
            raise OutputFailedError(f"a stream output was not delivered: {self._failure!r}")

    async def acked(self) -> None:
        """Wait until every output published so far is acknowledged; raise if any failed."""
        for publish in self._deferred:
            publish()
        waiting = list(self._unsettled)
        if waiting:
            await asyncio.wait(waiting)
        if self._failure is not None:
            raise OutputFailedError(f"a stream output was not delivered: {self._failure!r}")


@dataclass(frozen=True)
class _Dirty:
    partition: int
    value: Any
    version: int


@dataclass(frozen=True)
class _PartitionMessage:
    partition: int


@dataclass(frozen=True)
class _PartitionEvent:
    """What Faust's stores read from the current event: its source partition."""

    message: _PartitionMessage


# One shim per partition, made once: a table access per input must stay cheap.
_SHIMS: dict[int, _PartitionEvent] = {}


@contextmanager
def _current_partition(partition: int | None) -> Iterator[None]:
    """Run a store access as if processing an event of `partition` (None: no event).

    Faust's RocksDB store keeps one database per partition and picks it from the event being
    processed (`faust.streams.current_event`): a write outside stream iteration fails, and a read
    inside it looks only in that event's partition. A batch writes after its events, and a
    read may be for another agent's key, so the partition is stated rather than inherited."""
    token = faust_streams._current_event.set(_shim_ref(partition))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)


def _shim_ref(partition: int | None) -> Any:
    if partition is None:
        return None
    shim = _SHIMS.get(partition)
    if shim is None:
        shim = _SHIMS[partition] = _PartitionEvent(_PartitionMessage(partition))
    return weakref.ref(cast(Any, shim))


class BatchedTable:
    """A Faust table whose writes reach the store and the changelog at the batch's flush."""

    def __init__(
        self, table: Any, outputs: StreamOutputs, *, direct_changelog: bool = False
    ) -> None:
        """`direct_changelog`: write the changelog with the platform's confluent-kafka producer
        (a few µs a record) instead of Faust's aiokafka one (~100 µs, pure Python: at a
        hundred thousand changed keys it fell minutes behind); the flush then waits for those
        acks itself. The records are the ones Faust would write (its own key and value
        serialisers), so Faust's recovery reads them as its own."""
        self.table = table
        self._outputs = outputs
        self._direct = direct_changelog
        self._dirty: dict[Any, _Dirty] = {}
        self._version = 0
        # Held by `flush` and by a writer that changes values in place while it changes them:
        # a flush then never writes a value whose outputs it has not waited for.
        self.lock = asyncio.Lock()

    def get(self, key: Any, partition: int | None = None) -> Any:
        """The latest value: pending in this batch, else stored. `partition`: the key's
        partition when known (the input's); otherwise every partition's store is searched."""
        dirty = self._dirty.get(key)
        if dirty is not None:
            return dirty.value
        # No context manager here: this runs once per changed key per batch.
        token = faust_streams._current_event.set(_shim_ref(partition))
        try:
            return self.table.get(key)
        finally:
            faust_streams._current_event.reset(token)

    def set(self, key: Any, value: Any, partition: int) -> None:
        """`partition`: the source partition of the input being processed. The changelog record
        goes there, as Faust's own writes do, so a table partition recovers from its own
        changelog partition (sources must be co-partitioned with the table)."""
        if not 0 <= partition < self.table.partitions:
            raise ValueError(
                f"partition {partition} is outside table {self.table.name!r} "
                f"({self.table.partitions} partitions): source topic not co-partitioned"
            )
        self._version += 1
        self._dirty[key] = _Dirty(partition, value, self._version)

    def values(self) -> Iterator[Any]:
        """Stored values (at start-up, after recovery, nothing is dirty)."""
        return iter(self.table.values())

    def items(self) -> Iterator[tuple[Any, Any]]:
        """Stored keys and values (at start-up, after recovery, nothing is dirty)."""
        return iter(self.table.items())

    def __len__(self) -> int:
        return len(self.table)

    async def flush_if_over(self, max_dirty: int) -> None:
        """Flush now when more than `max_dirty` keys wait (a table flushed at commits only):
        bounds the memory they hold, the pause of the next commit and the shutdown's flush."""
        if len(self._dirty) > max_dirty:
            await self.flush()

    async def flush(self) -> None:
        if not self._dirty:
            return
        async with self.lock:
            await self._flush()

    async def _flush(self) -> None:
        snapshot = list(self._dirty.items())
        await self._outputs.acked()
        data = self.table.data
        direct: list[tuple[int, Any, Any]] = []
        for key, dirty in snapshot:
            with _current_partition(dirty.partition):
                data[key] = dirty.value
            if self._direct:
                direct.append((dirty.partition, key, dirty.value))
            else:
                self.table.send_changelog(dirty.partition, key, dirty.value)
            current = self._dirty.get(key)
            if current is not None and current.version == dirty.version:
                del self._dirty[key]
        if direct:
            # Before the commit this flush precedes: the changelog holds every value written.
            await self._send_changelogs(direct)

    def _send_changelogs(self, records: list[tuple[int, Any, Any]]) -> asyncio.Future[None]:
        """Produce the records; the future settles once every one is acknowledged (or one
        failed). One wake-up of the loop per flush, not one per record: thousands of keys
        change between two commits."""
        topic = self.table.changelog_topic
        name = topic.get_topic_name()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        waiting = [len(records)]
        offsets: dict[tuple[str, int], int] = {}
        errors: list[Any] = []

        def delivered(err: Any, msg: Any) -> None:  # the producer's poll thread, one at a time
            if err is not None:
                errors.append(err)
            else:
                tp = (msg.topic(), msg.partition())
                offsets[tp] = max(offsets.get(tp, -1), msg.offset())
            waiting[0] -= 1
            if waiting[0] == 0:
                loop.call_soon_threadsafe(self._changelogs_sent, future, errors, offsets)

        produce = self._outputs.producer.produce_raw
        for partition, key, value in records:
            raw_key, _ = topic.prepare_key(key, self.table.key_serializer)
            raw_value, _ = topic.prepare_value(value, self.table.value_serializer)
            produce(name, raw_key, raw_value, [], delivered, partition=partition)
        return future

    def _changelogs_sent(
        self,
        future: asyncio.Future[None],
        errors: list[Any],
        offsets: dict[tuple[str, int], int],
    ) -> None:
        if future.done():
            return
        if errors:
            future.set_exception(OutputFailedError(f"a table changelog record failed: {errors[0]}"))
            return
        # What Faust records when its own changelog write is acknowledged: RocksDB then knows
        # which changelog offsets its data already holds (a no-op for memory tables).
        for (topic, partition), offset in offsets.items():
            self.table.data.set_persisted_offset(TP(topic, partition), offset)
        future.set_result(None)
