"""Transactional outbox: events written in the state change's own transaction, relayed after.

A service never publishes its state changes directly: it adds an outbox row in the same DB
transaction as the change, so either both happen or neither. The relay publishes rows in id order
and deletes them only once Kafka acknowledged them; a crash in between publishes them again with
the same ce_id, which consumers deduplicate (see inbox.py).

No row can stop the relay: a row that can never be published (larger than the broker accepts,
or refused by it for a reason a retry cannot change) is moved to `outbox_dead_letters` with the
reason, logged and counted (`shopstream_outbox_dead_lettered_total`), and the rows behind it go
on. Every acknowledged row is deleted, whatever happened to the others of its batch, so nothing
already acknowledged is sent again by this relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message
from google.protobuf.message import Message as ProtoMessage
from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream_platform.db.database import Database
from shopstream_platform.db.tables import outbox, outbox_dead_letters
from shopstream_platform.errors import InvalidArgumentError
from shopstream_platform.kafka.cloudevents import CloudEventMeta, Headers, new_event_id
from shopstream_platform.kafka.codec import type_name
from shopstream_platform.kafka.producer import DeliveryError, EventProducer
from shopstream_platform.metrics import PlatformMetrics
from shopstream_platform.tracing import (
    current_tracestate,
    outgoing_traceparent,
    record_span,
    tracing_enabled,
)

log = logging.getLogger(__name__)

# The largest record the relay hands to the producer: librdkafka's message.max.bytes default
# (the broker's own default is 1048588). A bigger row is dead-lettered without being tried.
DEFAULT_MAX_RECORD_BYTES = 1_000_000
# Per-record overhead of the Kafka record format beyond key, value and headers (generous).
_RECORD_OVERHEAD = 100


def record_size(
    key: bytes, value: bytes, headers: Sequence[tuple[str, str]] | Sequence[tuple[str, bytes]]
) -> int:
    """An upper estimate of the record's size as the producer checks it."""
    return len(key) + len(value) + sum(len(k) + len(v) for k, v in headers) + _RECORD_OVERHEAD


class EventTooLargeError(InvalidArgumentError):
    """The event a request (or a consumed event) would cause is larger than Kafka accepts."""


class Outbox:
    """Writes events into the caller's transaction; knows the service's CloudEvents source.

    An event larger than `max_event_bytes` is refused at write time (EventTooLargeError, an
    INVALID_ARGUMENT for a gRPC caller, a dead letter for a consumed event), so the change that
    would cause it is rolled back instead of being committed with an event that cannot be sent.
    """

    def __init__(self, source: str, *, max_event_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> None:
        self._source = source
        self._max_event_bytes = max_event_bytes
        self._written = asyncio.Event()

    async def add(
        self,
        session: AsyncSession,
        topic: str,
        key: str,
        message: ProtoMessage,
        *,
        subject: str | None = None,
    ) -> CloudEventMeta:
        now = datetime.now(UTC)
        meta = CloudEventMeta(
            id=new_event_id(),
            type=type_name(message),
            source=self._source,
            time=now,
            traceparent=outgoing_traceparent(),
            subject=subject,
            tracestate=current_tracestate.get(),
        )
        headers = meta.text_headers()
        payload = message.SerializeToString()
        size = record_size(key.encode(), payload, headers)
        if size > self._max_event_bytes:
            raise EventTooLargeError(
                "request",
                f"the {meta.type} event it causes would be {size} bytes, above the "
                f"{self._max_event_bytes}-byte record limit",
            )
        await session.execute(
            outbox.insert().values(
                topic=topic,
                key=key,
                ce_id=meta.id,
                ce_type=meta.type,
                payload=payload,
                headers=json.dumps(headers),
                created_at=now,
            )
        )
        # Wake the relay early; harmless if the transaction later rolls back.
        self._written.set()
        return meta

    async def wait_for_writes(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._written.wait(), timeout_s)
        self._written.clear()


# Producer errors no retry can change: the record itself is refused.
_PERMANENT_CODES = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,  # local check or the broker's RECORD_TOO_LARGE
        KafkaError.INVALID_MSG_SIZE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.TOPIC_EXCEPTION,  # invalid topic name
        KafkaError._INVALID_ARG,
    }
)


def is_permanent_delivery_error(error: KafkaError) -> bool:
    """True when Kafka refused this record for good; timeouts, unavailable brokers, missing
    topics and authorization failures may heal (or be fixed by an operator), so they are not."""
    return not error.fatal() and error.code() in _PERMANENT_CODES


@dataclass(frozen=True)
class _Row:
    id: int
    topic: str
    key: str
    ce_id: str
    ce_type: str
    payload: bytes
    headers: str
    created_at: datetime


class OutboxRelay:
    """Publishes outbox rows in id order and deletes each once acknowledged; retries until then.

    A row that can never be published is dead-lettered (see the module docstring). Transient
    failures (broker away, timeouts) keep their rows for the next attempt after a back-off; the
    acknowledged rows of the same batch are deleted all the same.
    """

    def __init__(
        self,
        db: Database,
        outbox_writer: Outbox,
        producer: EventProducer,
        metrics: PlatformMetrics,
        *,
        batch: int = 500,
        poll_interval_s: float = 0.05,
        retry_backoff_s: float = 1.0,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        drain_timeout_s: float = 20.0,
    ) -> None:
        self._db = db
        self._outbox = outbox_writer
        self._producer = producer
        self._metrics = metrics
        self._batch = batch
        self._poll_interval_s = poll_interval_s
        self._retry_backoff_s = retry_backoff_s
        self._max_record_bytes = max_record_bytes
        self._drain_timeout_s = drain_timeout_s
        self._stopping = asyncio.Event()
        # created_at of the oldest row known to be waiting, for the age gauge (read at scrape).
        self._oldest_pending: datetime | None = None
        self._failing_since: float | None = None
        service = metrics.service
        self._pending_gauge = metrics.outbox_pending.labels(service)
        metrics.outbox_oldest_pending_age.labels(service).set_function(self.oldest_pending_age_s)

    def stop(self) -> None:
        self._stopping.set()

    def oldest_pending_age_s(self) -> float:
        """Seconds the oldest unpublished row has waited, as of the last relay pass (0 if none)."""
        oldest = self._oldest_pending
        return max(0.0, (datetime.now(UTC) - oldest).total_seconds()) if oldest else 0.0

    @property
    def failing_for_s(self) -> float:
        """Seconds since delivery has been failing without a successful pass (0 when healthy);
        a health check can report an outbox that is not draining from it."""
        since = self._failing_since
        return time.monotonic() - since if since is not None else 0.0

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                sent = await self.relay_once()
            except DeliveryError as exc:
                log.warning("outbox relay delivery failed; retrying", extra={"error": str(exc)})
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._retry_backoff_s)
                continue
            if sent < self._batch:
                await self._outbox.wait_for_writes(self._poll_interval_s)
        await self._drain()

    async def _drain(self) -> None:
        """Publish what is already committed so a clean shutdown leaves nothing behind; bounded,
        so a broker that is away cannot hold the shutdown (the rows stay for the next start)."""
        deadline = time.monotonic() + self._drain_timeout_s
        while time.monotonic() < deadline:
            try:
                handled = await asyncio.wait_for(
                    self.relay_once(), max(0.1, deadline - time.monotonic())
                )
            except (DeliveryError, TimeoutError) as exc:
                log.warning(
                    "outbox not drained at shutdown; rows stay for the next start",
                    extra={"error": str(exc) or type(exc).__name__},
                )
                return
            if handled < self._batch:
                return
        log.warning("outbox drain timed out at shutdown; rows stay for the next start")

    async def relay_once(self) -> int:
        """Publish up to one batch; returns how many rows left the outbox (acknowledged and
        deleted, or dead-lettered). Raises DeliveryError when some rows must be tried again."""
        async with self._db.read() as session:
            rows = [
                _Row(**r._asdict())
                for r in (
                    await session.execute(
                        select(
                            outbox.c.id,
                            outbox.c.topic,
                            outbox.c.key,
                            outbox.c.ce_id,
                            outbox.c.ce_type,
                            outbox.c.payload,
                            outbox.c.headers,
                            outbox.c.created_at,
                        )
                        .order_by(outbox.c.id)
                        .limit(self._batch)
                    )
                ).all()
            ]
        if not rows:
            self._set_drained()
            return 0
        dead: list[tuple[_Row, str, str]] = []  # row, reason code (metric label), reason text
        sending: list[_Row] = []
        records: list[tuple[str, bytes, bytes, Headers]] = []
        traced = tracing_enabled()
        sent_ns = time.time_ns()
        for row in rows:
            key = row.key.encode()
            headers: Headers = [(k, v.encode()) for k, v in json.loads(row.headers)]
            size = record_size(key, row.payload, headers)  # type: ignore[arg-type]
            if size > self._max_record_bytes:
                dead.append(
                    (
                        row,
                        "too_large",
                        f"record of {size} bytes exceeds the {self._max_record_bytes}-byte limit",
                    )
                )
                continue
            sending.append(row)
            records.append((row.topic, key, row.payload, headers))
        # The producer's batch path: produced in id order, one shared delivery callback for the
        # batch (not a future and a closure per row), each row's outcome matched to it.
        errors: list[KafkaError | None] = []
        if records:
            delivery = self._producer.produce_batch(records, asyncio.get_running_loop())
            errors = await delivery.done()
        acked: list[_Row] = []
        retry: list[tuple[_Row, KafkaError]] = []
        refused: list[_Row] = []
        for row, error in zip(sending, errors, strict=True):
            if traced:
                self._trace(row, sent_ns, error)
            if error is None:
                acked.append(row)
            elif is_permanent_delivery_error(error):
                refused.append(row)
            else:
                retry.append((row, error))
        # The broker refuses a whole produce batch for one record too large for the topic, so the
        # refused rows are tried again one at a time: only a row refused on its own is dead.
        for row in refused:
            key = row.key.encode()
            headers = [(k, v.encode()) for k, v in json.loads(row.headers)]
            error = await self._send(row.topic, key, row.payload, headers)
            if error is None:
                acked.append(row)
            elif is_permanent_delivery_error(error):
                dead.append((row, error.name().lower(), f"refused by Kafka: {error.str()}"))
            else:
                retry.append((row, error))
        if acked or dead:
            await self._settle(acked, dead)
        if retry or len(rows) == self._batch:
            # A backlog may remain: count it. Otherwise the table was drained a moment ago, and a
            # COUNT per batch on the hot path would only confirm that.
            await self._update_pending()
        else:
            self._set_drained()
        if retry:
            if self._failing_since is None:
                self._failing_since = time.monotonic()
            row, error = retry[0]
            raise DeliveryError(
                f"{len(retry)} of {len(rows)} outbox records not acknowledged "
                f"(first: id {row.id} on {row.topic}): {error.str()}"
            )
        self._failing_since = None
        return len(acked) + len(dead)

    def _trace(self, row: _Row, sent_ns: int, error: KafkaError | None) -> None:
        """A PRODUCER span from the batch's produce to this row's ack, child of the work that
        wrote the row (its traceparent, fixed at write time)."""
        headers = dict(json.loads(row.headers))
        record_span(
            f"{row.topic} publish",
            "producer",
            headers.get("traceparent"),
            headers.get("tracestate"),
            sent_ns,
            {
                "messaging.system": "kafka",
                "messaging.operation.type": "send",
                "messaging.destination.name": row.topic,
                "messaging.message.id": row.ce_id,
                "cloudevents.event_type": row.ce_type,
                "shopstream.outbox.id": row.id,
            },
            None if error is None else error.str(),
        )

    def _send(
        self, topic: str, key: bytes, value: bytes, headers: Headers
    ) -> asyncio.Future[KafkaError | None]:
        """Produce now (keeping id order) and return a future of the delivery's error, if any.

        The error itself (not a text) is kept, so the relay can tell a refused record from a
        broker that is away; a record refused before it was queued settles the future at once.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[KafkaError | None] = loop.create_future()

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            # A report may come after a bounded drain gave up and the loop ended: drop it.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle_once, future, err)

        try:
            self._producer.produce_raw(topic, key, value, headers, delivered)
        except KafkaException as exc:
            error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
            future.set_result(error or KafkaError(KafkaError._FAIL, str(exc)))
        return future

    async def _settle(self, acked: list[_Row], dead: list[tuple[_Row, str, str]]) -> None:
        """Delete acknowledged rows and move dead ones, in one transaction."""
        now = datetime.now(UTC)
        async with self._db.transaction() as session:
            if dead:
                await session.execute(
                    insert(outbox_dead_letters),
                    [
                        {
                            "id": row.id,
                            "topic": row.topic,
                            "key": row.key,
                            "ce_id": row.ce_id,
                            "ce_type": row.ce_type,
                            "payload": row.payload,
                            "headers": row.headers,
                            "created_at": row.created_at,
                            "dead_lettered_at": now,
                            "reason": reason,
                        }
                        for row, _code, reason in dead
                    ],
                )
            gone = [r.id for r in acked] + [row.id for row, _c, _r in dead]
            await session.execute(delete(outbox).where(outbox.c.id.in_(gone)))
        m = self._metrics
        for row in acked:
            m.outbox_relayed.labels(m.service, row.topic).inc()
        for row, code, reason in dead:
            m.outbox_dead_lettered.labels(m.service, row.topic, code).inc()
            log.error(
                "outbox row dead-lettered: it can never be published",
                extra={
                    "outbox_id": row.id,
                    "topic": row.topic,
                    "ce_id": row.ce_id,
                    "ce_type": row.ce_type,
                    "reason": reason,
                },
            )

    def _set_drained(self) -> None:
        self._pending_gauge.set(0)
        self._oldest_pending = None

    async def _update_pending(self) -> None:
        async with self._db.read() as session:
            pending, oldest = (
                await session.execute(
                    select(func.count(), func.min(outbox.c.created_at)).select_from(outbox)
                )
            ).one()
        self._pending_gauge.set(pending)
        self._oldest_pending = _as_utc(oldest) if pending else None


def _as_utc(value: Any) -> datetime | None:
    """MIN() over a UtcDateTime column bypasses the type on SQLite: a naive value or a string."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _settle_once(future: asyncio.Future[KafkaError | None], err: KafkaError | None) -> None:
    if not future.done():
        future.set_result(err)
