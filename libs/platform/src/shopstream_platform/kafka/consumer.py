"""The consumer loop: decode by ce_type, handle, store the offset only after, dead-letter poison.

At-least-once: an offset is stored after its record was handled (or dead-lettered), and librdkafka
commits stored offsets in the background and on shutdown. Handlers make effects idempotent (see
db/inbox.py). A transient failure is retried with backoff; when retries run out the loop stops
without storing the offset, so the record is redelivered after restart rather than lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from google.protobuf.message import Message as ProtoMessage

from shopstream_platform.kafka.dispatch import ConsumerStalledError, Dispatcher, RawRecord
from shopstream_platform.kafka.dlq import DeadLetterPublisher
from shopstream_platform.kafka.events import Handler
from shopstream_platform.metrics import PlatformMetrics
from shopstream_platform.settings import ConsumerSettings, KafkaSettings

log = logging.getLogger(__name__)

__all__ = ["ConsumerStalledError", "EventConsumer", "consumer_config"]

_LAG_INTERVAL_S = 5.0


def consumer_config(
    kafka: KafkaSettings, settings: ConsumerSettings, group_id: str, client_id: str
) -> dict[str, Any]:
    return {
        **kafka.client_config(),
        "group.id": group_id,
        "client.id": client_id,
        "enable.auto.commit": True,
        # We store offsets ourselves after handling; auto-commit only commits what we stored.
        "enable.auto.offset.store": False,
        "auto.commit.interval.ms": settings.auto_commit_interval_ms,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": settings.session_timeout_ms,
        "isolation.level": "read_committed",
        "enable.partition.eof": False,
    }


class EventConsumer:
    """Reads topics as one consumer group member and routes each event type to its handler."""

    def __init__(
        self,
        *,
        kafka: KafkaSettings,
        settings: ConsumerSettings,
        group_id: str,
        topics: Iterable[str],
        routes: Mapping[type[ProtoMessage], Handler],
        dead_letters: DeadLetterPublisher,
        metrics: PlatformMetrics,
        transient: tuple[type[BaseException], ...] = (),
        client_id: str | None = None,
    ) -> None:
        self._group = group_id
        self._topics = list(topics)
        self._settings = settings
        self._dispatcher = Dispatcher(
            group_id=group_id,
            routes=routes,
            dead_letters=dead_letters,
            metrics=metrics,
            settings=settings,
            transient=transient,
        )
        self._metrics = metrics
        self._consumer = Consumer(consumer_config(kafka, settings, group_id, client_id or group_id))
        # librdkafka calls block; one dedicated thread keeps them off the event loop.
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"consumer-{group_id}"
        )
        self._stopping = asyncio.Event()
        self._last_lag_at = 0.0

    @property
    def group_id(self) -> str:
        return self._group

    def stop(self) -> None:
        """Ask the loop to finish the record in hand, commit and return."""
        self._stopping.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._consumer.subscribe(self._topics)
        log.info("consumer started", extra={"group": self._group, "topics": self._topics})
        try:
            while not self._stopping.is_set():
                records = await loop.run_in_executor(
                    self._executor,
                    self._consumer.consume,
                    self._settings.max_batch,
                    self._settings.poll_timeout_s,
                )
                for record in records:
                    if self._stopping.is_set():
                        break
                    await self._process(record)
                await self._maybe_report_lag(loop)
        finally:
            await loop.run_in_executor(self._executor, self._close)

    def _close(self) -> None:
        try:
            self._consumer.commit(asynchronous=False)
        except KafkaException as exc:
            # Nothing stored since the last commit is the usual case, not a failure.
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                log.warning("final commit failed", extra={"group": self._group, "error": str(exc)})
        self._consumer.close()
        self._executor.shutdown(wait=False)
        log.info("consumer stopped", extra={"group": self._group})

    async def _process(self, record: Message) -> None:
        error = record.error()
        if error is not None:
            if error.fatal():
                raise KafkaException(error)
            log.warning("consumer error", extra={"group": self._group, "error": str(error)})
            return
        topic = record.topic() or ""
        started = time.perf_counter()
        outcome = await self._dispatcher.dispatch(
            RawRecord(
                topic=topic,
                partition=record.partition() or 0,
                offset=record.offset() or 0,
                key=record.key(),
                value=record.value(),
                headers=record.headers(),
            )
        )
        # Only now may the offset move past this record.
        self._consumer.store_offsets(message=record)
        m = self._metrics
        m.events_consumed.labels(m.service, topic, self._group, outcome.value).inc()
        m.event_handling.labels(m.service, topic, self._group).observe(
            time.perf_counter() - started
        )

    async def _maybe_report_lag(self, loop: asyncio.AbstractEventLoop) -> None:
        now = time.monotonic()
        if now - self._last_lag_at < _LAG_INTERVAL_S:
            return
        self._last_lag_at = now
        await loop.run_in_executor(self._executor, self._report_lag)

    def _report_lag(self) -> None:
        try:
            assigned = self._consumer.assignment()
            positions = self._consumer.position(assigned)
            m = self._metrics
            for tp in positions:
                _low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(tp.topic, tp.partition), timeout=2.0
                )
                lag = high - tp.offset if tp.offset >= 0 else high
                m.consumer_lag.labels(m.service, tp.topic, str(tp.partition), self._group).set(
                    max(lag, 0)
                )
        except KafkaException as exc:
            log.debug("lag report failed", extra={"error": str(exc)})
