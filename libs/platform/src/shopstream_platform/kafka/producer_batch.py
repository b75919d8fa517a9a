"""The batch publish path's parts: CloudEvents headers built once per type and source, ids and
traceparents from one random draw per batch, and delivery reports matched to their records
without a closure per record.

Measured (bench/README.md, "Where the producer's time goes"): per record, `meta_for` cost
13-14 µs (uuid, traceparent, a frozen dataclass), `to_headers` 7 µs, and a new delivery closure
and a metrics label look-up each; Python, not librdkafka, capped the rate. Here the constant
headers are shared tuples, a record's own are its id, its traceparent and the batch's time, and
every delivery report goes to one callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections import deque
from collections.abc import Callable

from confluent_kafka import KafkaError, Message

from shopstream_platform.kafka.cloudevents import CONTENT_TYPE, SPECVERSION, Headers

_SPEC = ("ce_specversion", SPECVERSION)
_CONTENT = ("content-type", CONTENT_TYPE)
_ZERO_SPAN = "0" * 16
_ZERO_TRACE = "0" * 32
# Per record: 16 bytes of event id, 8 of span id, 16 of trace id (a new trace when there is no
# incoming one) - 80 hex characters.
_DRAW = 40


class HeaderTemplate:
    """The headers every record of one event type from one source shares, built once."""

    __slots__ = ("_fixed", "source", "type")

    def __init__(self, ce_type: str, source: str) -> None:
        self.type = ce_type
        self.source = source
        self._fixed = (("ce_type", ce_type), ("ce_source", source))

    def headers(
        self,
        ce_id: str,
        ce_time: str,
        traceparent: str,
        subject: str | None = None,
        tracestate: str | None = None,
    ) -> Headers:
        """One record's headers (str values: confluent-kafka encodes them in C)."""
        fixed = self._fixed
        headers: Headers = [
            _SPEC,
            ("ce_id", ce_id),
            fixed[0],
            fixed[1],
            ("ce_time", ce_time),
            _CONTENT,
        ]
        if subject:
            headers.append(("ce_subject", subject))
        headers.append(("traceparent", traceparent))
        if tracestate:
            headers.append(("tracestate", tracestate))
        return headers


class RandomIds:
    """Event ids and traceparents for n records from one `os.urandom` call.

    With an incoming traceparent every record is a new span of that trace (as
    `tracing.child_traceparent`); without one, each record starts its own trace (as
    `tracing.new_traceparent`)."""

    __slots__ = ("_flags", "_hex", "_parent_prefix")

    def __init__(self, n: int, parent: str | None) -> None:
        self._hex = os.urandom(_DRAW * n).hex()
        self._parent_prefix: str | None = None
        self._flags = "01"
        if parent:
            parts = parent.split("-")
            if (
                len(parts) == 4
                and len(parts[1]) == 32
                and len(parts[2]) == 16
                and len(parts[3]) == 2
                and parts[1] != _ZERO_TRACE
            ):
                self._parent_prefix = f"00-{parts[1]}-"
                self._flags = parts[3]

    def event_id(self, i: int) -> str:
        start = i * 2 * _DRAW
        return self._hex[start : start + 32]

    def traceparent(self, i: int) -> str:
        start = i * 2 * _DRAW + 32
        span = self._hex[start : start + 16]
        if span == _ZERO_SPAN:  # invalid in W3C; one chance in 2**64
            span = "0" * 15 + "1"
        if self._parent_prefix is not None:
            return f"{self._parent_prefix}{span}-{self._flags}"
        trace = self._hex[start + 16 : start + 48]
        if trace == _ZERO_TRACE:
            trace = "0" * 31 + "1"
        return f"00-{trace}-{span}-01"


class BatchDelivery:
    """The outcome of each record of one batch, from one shared delivery callback.

    librdkafka reports a partition's deliveries in produce order, and a non-empty key always
    maps to the same partition, so the n-th report for (topic, key) is the n-th record produced
    with them; the value is compared too, and on a mismatch the first waiting record with that
    value is taken. Records with an empty key are spread over partitions at random by the
    partitioner: the caller gives those a callback of their own (`track_alone`).
    """

    def __init__(
        self,
        size: int,
        loop: asyncio.AbstractEventLoop | None = None,
        count: Callable[[KafkaError | None, Message], None] | None = None,
    ) -> None:
        self.errors: list[KafkaError | None] = [None] * size
        self._values: list[bytes | None] = [None] * size
        self._waiting: dict[tuple[str, bytes], deque[int]] = {}
        self._pending = 0
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._loop = loop
        self._future: asyncio.Future[None] | None = loop.create_future() if loop else None
        self._count = count
        self.sealed = False

    def expect(self, index: int, topic: str, key: bytes, value: bytes | None) -> None:
        """Record `index` is about to be produced (call before produce)."""
        self._values[index] = value
        with self._lock:
            self._pending += 1
            queue = self._waiting.get((topic, key))
            if queue is None:
                queue = self._waiting[(topic, key)] = deque()
            queue.append(index)

    def forget(self, index: int, topic: str, key: bytes, error: KafkaError) -> None:
        """Record `index` was refused before it was queued (produce raised)."""
        with self._lock:
            self._waiting[(topic, key)].remove(index)
        self._settle(index, error)

    def track_alone(self, index: int) -> Callable[[KafkaError | None, Message], None]:
        """A callback for one record whose key does not pin its partition."""
        with self._lock:
            self._pending += 1

        def delivered(err: KafkaError | None, msg: Message) -> None:
            if self._count is not None:
                self._count(err, msg)
            self._settle(index, err)

        return delivered

    def settle_alone(self, index: int, error: KafkaError) -> None:
        """A record of `track_alone` was refused before it was queued."""
        self._settle(index, error)

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        """The shared delivery callback (runs on the producer's poll thread)."""
        if self._count is not None:
            self._count(err, msg)
        value = msg.value()
        with self._lock:
            queue = self._waiting[(msg.topic() or "", msg.key() or b"")]
            index = queue.popleft()
            if self._values[index] != value:  # not expected: take the record with this value
                match = next((i for i in queue if self._values[i] == value), None)
                if match is not None:
                    queue.remove(match)
                    queue.appendleft(index)
                    index = match
        self._settle(index, err)

    def _settle(self, index: int, err: KafkaError | None) -> None:
        self.errors[index] = err
        with self._lock:
            self._pending -= 1
            finished = self._pending == 0 and self.sealed
        if finished:
            self._finish()

    def seal(self) -> None:
        """Every record of the batch was handed over: finish once the last report is in."""
        with self._lock:
            self.sealed = True
            finished = self._pending == 0
        if finished:
            self._finish()

    def _finish(self) -> None:
        self._values = []
        self._done.set()
        if self._future is not None and self._loop is not None:
            future = self._future
            # A closed loop: nobody waits any more.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(_set_done, future)

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until every record has its report; False on time-out."""
        return self._done.wait(timeout_s)

    async def done(self) -> list[KafkaError | None]:
        """Every record's error (None: acknowledged), once all reports are in."""
        if self._future is None:
            raise RuntimeError("BatchDelivery made without a loop: use wait()")
        await self._future
        return self.errors


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
