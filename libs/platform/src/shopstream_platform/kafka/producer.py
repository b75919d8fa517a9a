"""The one Kafka producer: idempotent, acks=all, CloudEvents headers, awaitable delivery reports."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from google.protobuf.message import Message as ProtoMessage

from shopstream_platform.kafka.cloudevents import (
    CloudEventMeta,
    Headers,
    derived_event_id,
    format_time,
    new_event_id,
)
from shopstream_platform.kafka.codec import type_name
from shopstream_platform.kafka.producer_batch import BatchDelivery, HeaderTemplate, RandomIds
from shopstream_platform.metrics import PlatformMetrics, observe_kafka_statistics
from shopstream_platform.settings import KafkaSettings
from shopstream_platform.tracing import (
    current_traceparent,
    current_tracestate,
    outgoing_traceparent,
    tracing_enabled,
)

log = logging.getLogger(__name__)

DeliveryCallback = Callable[[KafkaError | None, Message], None]


# How often librdkafka reports its statistics (queue depth, broker round trips) to the metrics.
STATS_INTERVAL_MS = 15_000


class DeliveryError(RuntimeError):
    """Kafka did not acknowledge a record within the delivery timeout."""


def producer_config(settings: KafkaSettings, client_id: str) -> dict[str, Any]:
    """Stated, never defaulted: librdkafka ships with idempotence off."""
    return {
        **settings.client_config(),
        "client.id": client_id,
        "enable.idempotence": True,
        "acks": "all",
        # Idempotence keeps order with up to 5 requests in flight per connection.
        "max.in.flight.requests.per.connection": 5,
        "message.timeout.ms": settings.delivery_timeout_ms,
        "linger.ms": settings.linger_ms,
        "compression.type": "lz4",
        "batch.num.messages": 10_000,
        "queue.buffering.max.messages": 500_000,
    }


class EventProducer:
    """Publishes protobuf events; a background thread serves delivery reports.

    `publish` is fire-and-forget with an optional callback (the fast path); `publish_and_wait`
    returns once Kafka acknowledged the record, raising DeliveryError when it did not.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        source: str,
        metrics: PlatformMetrics | None = None,
        *,
        client_id: str | None = None,
    ) -> None:
        self._source = source
        self._metrics = metrics
        # Metric children per (topic, acked): labels() costs more than the increment itself.
        self._counters: dict[tuple[str, bool], Any] = {}
        # The batch path's shared headers, per message class.
        self._templates: dict[tuple[type[ProtoMessage], str], HeaderTemplate] = {}
        config = producer_config(settings, client_id or source)
        if metrics is not None:
            # librdkafka's statistics feed the queue and round-trip gauges; served by poll().
            config["statistics.interval.ms"] = STATS_INTERVAL_MS
            config["stats_cb"] = lambda stats: observe_kafka_statistics(metrics, stats)
        self._producer = Producer(config)
        self._closing = threading.Event()
        self._poller = threading.Thread(
            target=self._poll_loop, name="kafka-producer-poll", daemon=True
        )
        self._poller.start()

    @property
    def source(self) -> str:
        return self._source

    def _poll_loop(self) -> None:
        # This thread serves every delivery report: if it ended (poll raises a fatal client
        # error, or a callback's exception), no publisher waiting for an acknowledgement would
        # ever hear of one, or of the failure librdkafka reports for each record it gives up.
        while not self._closing.is_set():
            try:
                self._producer.poll(0.1)
            except Exception:
                log.exception("producer poll failed; still serving delivery reports")
                self._closing.wait(0.1)

    def meta_for(
        self,
        message: ProtoMessage,
        *,
        subject: str | None = None,
        derived_from: str | None = None,
        time: datetime | None = None,
    ) -> CloudEventMeta:
        """CloudEvents metadata for an event this service emits.

        `derived_from` names what the event is derived from (e.g. "<input ce_id>:charge"); its id
        is then a deterministic hash of it, so a stream processor that handles its input twice
        emits the same event twice and downstream deduplication by ce_id absorbs it.
        """
        return CloudEventMeta(
            id=derived_event_id(derived_from) if derived_from is not None else new_event_id(),
            type=type_name(message),
            source=self._source,
            time=time or datetime.now(UTC),
            traceparent=outgoing_traceparent(),
            subject=subject,
            tracestate=current_tracestate.get(),
        )

    def publish(
        self,
        topic: str,
        key: str,
        message: ProtoMessage,
        *,
        meta: CloudEventMeta | None = None,
        on_delivery: DeliveryCallback | None = None,
    ) -> CloudEventMeta:
        meta = meta or self.meta_for(message)
        self.produce_raw(
            topic, key.encode(), message.SerializeToString(), meta.to_headers(), on_delivery
        )
        return meta

    def produce_raw(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        on_delivery: DeliveryCallback | None = None,
        *,
        partition: int | None = None,
    ) -> None:
        """Produce pre-encoded bytes (outbox relay, DLQ, table changelogs: those name their
        `partition`); waits for queue space when it is full."""
        if on_delivery is None:
            # The fast path: one shared callback, no closure per record.
            callback = self._count_delivery
        else:
            count = self._count_delivery

            def callback(err: KafkaError | None, msg: Message) -> None:
                count(err, msg)
                on_delivery(err, msg)

        while True:
            try:
                if partition is None:
                    self._producer.produce(
                        topic, value=value, key=key, headers=headers, on_delivery=callback
                    )
                else:
                    self._producer.produce(
                        topic,
                        value=value,
                        key=key,
                        headers=headers,
                        on_delivery=callback,
                        partition=partition,
                    )
                return
            except BufferError:
                # Local queue full: let the poll thread drain delivery reports, then retry.
                self._producer.flush(0.1)

    def publish_batch(
        self,
        topic: str,
        records: Sequence[tuple[str, ProtoMessage]],
        *,
        time: datetime | None = None,
        event_ids: Sequence[str] | None = None,
        subjects: bool = False,
        source: str | None = None,
        on_delivery: DeliveryCallback | None = None,
    ) -> int:
        """Publish many (key, event) records to one topic, fire-and-forget; returns how many.

        The batch path (`publish` per record costs several times more Python): headers built
        once per event type and source, one random draw for every record's id and traceparent,
        one `ce_time` for the batch (`time`, default now), and every delivery report counted by
        one shared callback, `on_delivery` (if given) called after it for each record. Ids are
        random unless `event_ids` gives one per record (derived ids, for re-sent events);
        `subjects=True` stamps each record's key as its `ce_subject`; `source` overrides the
        producer's `ce_source` (a simulator speaking for several systems).
        """
        n = len(records)
        if n == 0:
            return 0
        if event_ids is not None and len(event_ids) != n:
            raise ValueError(f"{len(event_ids)} event ids for {n} records")
        ce_time = format_time(time or datetime.now(UTC))
        current = current_traceparent.get()
        # With tracing on, the records carry the current span itself (as outgoing_traceparent).
        fixed_parent = current if current and tracing_enabled() else None
        draws = RandomIds(n, current)
        tracestate = current_tracestate.get()
        callback = self._count_delivery if on_delivery is None else self._then(on_delivery)
        source = source or self._source
        templates = self._templates
        produce = self._producer.produce
        for i, (key, message) in enumerate(records):
            template = templates.get((type(message), source))
            if template is None:
                template = templates[(type(message), source)] = HeaderTemplate(
                    type_name(message), source
                )
            headers = template.headers(
                event_ids[i] if event_ids is not None else draws.event_id(i),
                ce_time,
                fixed_parent or draws.traceparent(i),
                key if subjects else None,
                tracestate,
            )
            value = message.SerializeToString()
            encoded = key.encode()
            while True:
                try:
                    produce(topic, value, encoded, headers=headers, on_delivery=callback)
                    break
                except BufferError:
                    self._producer.flush(0.1)
        return n

    def produce_batch(
        self,
        records: Sequence[tuple[str, bytes, bytes | None, Headers]],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> BatchDelivery:
        """Produce pre-encoded (topic, key, value, headers) records in order, with one shared
        delivery callback for the batch instead of a closure per record; the returned
        BatchDelivery holds each record's error once every report is in (`await .done()` with a
        `loop`, or `.wait()`). A record refused before it is queued (too large, unknown
        partition) gets its error at once; the others go on."""
        delivery = BatchDelivery(len(records), loop, self._count_delivery)
        produce = self._producer.produce
        for i, (topic, key, value, headers) in enumerate(records):
            if key:
                delivery.expect(i, topic, key, value)
                callback: DeliveryCallback = delivery
            else:
                # No key: the partitioner picks a partition at random, so order cannot match it.
                callback = delivery.track_alone(i)
            while True:
                try:
                    produce(topic, value, key, headers=headers, on_delivery=callback)
                    break
                except BufferError:
                    self._producer.flush(0.1)
                except KafkaException as exc:
                    error = (
                        exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                    )
                    error = error or KafkaError(KafkaError._FAIL, str(exc))
                    if key:
                        delivery.forget(i, topic, key, error)
                    else:
                        delivery.settle_alone(i, error)
                    break
        delivery.seal()
        return delivery

    def _then(self, on_delivery: DeliveryCallback) -> DeliveryCallback:
        """The shared counting callback, then the caller's (one closure per batch)."""
        count = self._count_delivery

        def callback(err: KafkaError | None, msg: Message) -> None:
            count(err, msg)
            on_delivery(err, msg)

        return callback

    async def publish_and_wait(
        self, topic: str, key: str, message: ProtoMessage, *, meta: CloudEventMeta | None = None
    ) -> CloudEventMeta:
        meta = meta or self.meta_for(message)
        await self.produce_raw_and_wait(
            topic, key.encode(), message.SerializeToString(), meta.to_headers()
        )
        return meta

    def _count_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            log.warning("delivery failed", extra={"topic": msg.topic(), "error": str(err)})
        metrics = self._metrics
        if metrics is None:
            return
        key = (msg.topic() or "", err is None)
        counter = self._counters.get(key)
        if counter is None:
            outcome = "acked" if err is None else "error"
            counter = self._counters[key] = metrics.events_produced.labels(
                metrics.service, key[0], outcome
            )
        counter.inc()

    async def produce_raw_and_wait(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Headers
    ) -> None:
        await self.produce_raw_acked(topic, key, value, headers)

    def produce_raw_acked(
        self, topic: str, key: bytes | None, value: bytes | None, headers: Headers
    ) -> asyncio.Future[None]:
        """Produce now (so records keep their call order) and return a future settled by the
        broker's acknowledgement: a caller can send several records and await them together."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def resolve(err: KafkaError | None, _msg: Message) -> None:
            loop.call_soon_threadsafe(_settle, future, err)

        self.produce_raw(topic, key, value, headers, resolve)
        return future

    def publish_acked(
        self, topic: str, key: str, message: ProtoMessage, meta: CloudEventMeta
    ) -> asyncio.Future[None]:
        """`publish` whose acknowledgement can be awaited later (see produce_raw_acked)."""
        return self.produce_raw_acked(
            topic, key.encode(), message.SerializeToString(), meta.to_headers()
        )

    def flush(self, timeout_s: float = 30.0) -> int:
        """Wait for outstanding deliveries; returns how many are still undelivered."""
        return int(self._producer.flush(timeout_s))

    def close(self, timeout_s: float = 30.0) -> int:
        remaining = self.flush(timeout_s)
        self._closing.set()
        self._poller.join(timeout=5)
        if remaining:
            log.error("producer closed with undelivered records", extra={"remaining": remaining})
        return remaining


def _settle(future: asyncio.Future[None], err: KafkaError | None) -> None:
    if future.done():
        return
    if err is None:
        future.set_result(None)
    else:
        future.set_exception(DeliveryError(str(err)))
