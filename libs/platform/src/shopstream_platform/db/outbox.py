"""Transactional outbox: events written in the state change's own transaction, relayed after.

A service never publishes its state changes directly: it adds an outbox row in the same DB
transaction as the change, so either both happen or neither. The relay publishes rows in id order
and deletes them only once Kafka acknowledged them; a crash in between publishes them again with
the same ce_id, which consumers deduplicate (see inbox.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime

from google.protobuf.message import Message as ProtoMessage
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream_platform.db.database import Database
from shopstream_platform.db.tables import outbox
from shopstream_platform.kafka.cloudevents import CloudEventMeta, new_event_id
from shopstream_platform.kafka.codec import type_name
from shopstream_platform.kafka.producer import DeliveryError, EventProducer
from shopstream_platform.metrics import PlatformMetrics
from shopstream_platform.tracing import outgoing_traceparent

log = logging.getLogger(__name__)


class Outbox:
    """Writes events into the caller's transaction; knows the service's CloudEvents source."""

    def __init__(self, source: str) -> None:
        self._source = source
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
        )
        headers = meta.text_headers()
        await session.execute(
            outbox.insert().values(
                topic=topic,
                key=key,
                ce_id=meta.id,
                ce_type=meta.type,
                payload=message.SerializeToString(),
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


class OutboxRelay:
    """Publishes outbox rows in id order and deletes each once acknowledged; retries until then."""

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
    ) -> None:
        self._db = db
        self._outbox = outbox_writer
        self._producer = producer
        self._metrics = metrics
        self._batch = batch
        self._poll_interval_s = poll_interval_s
        self._retry_backoff_s = retry_backoff_s
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                sent = await self.relay_once()
            except DeliveryError as exc:
                log.warning("outbox relay delivery failed; retrying", extra={"error": str(exc)})
                await asyncio.sleep(self._retry_backoff_s)
                continue
            if sent < self._batch:
                await self._outbox.wait_for_writes(self._poll_interval_s)
        # Drain what is already committed so a clean shutdown leaves nothing behind.
        while await self.relay_once() == self._batch:
            pass

    async def relay_once(self) -> int:
        """Publish up to one batch; returns how many rows were acknowledged and deleted."""
        async with self._db.read() as session:
            rows = (
                await session.execute(
                    select(
                        outbox.c.id,
                        outbox.c.topic,
                        outbox.c.key,
                        outbox.c.payload,
                        outbox.c.headers,
                    )
                    .order_by(outbox.c.id)
                    .limit(self._batch)
                )
            ).all()
        if not rows:
            self._metrics.outbox_pending.labels(self._metrics.service).set(0)
            return 0
        deliveries = [
            self._producer.produce_raw_and_wait(
                row.topic,
                row.key.encode(),
                row.payload,
                [(k, v.encode()) for k, v in json.loads(row.headers)],
            )
            for row in rows
        ]
        results = await asyncio.gather(*deliveries, return_exceptions=True)
        acked = []
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, BaseException):
                # Stop at the first failure: later rows stay and are re-sent after it, keeping
                # the relay's order; duplicates of already-sent ones are deduplicated downstream.
                break
            acked.append(row)
        if acked:
            async with self._db.transaction() as session:
                await session.execute(delete(outbox).where(outbox.c.id.in_([r.id for r in acked])))
            for row in acked:
                self._metrics.outbox_relayed.labels(self._metrics.service, row.topic).inc()
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures or len(rows) == self._batch:
            # A backlog may remain: count it. Otherwise the table was drained a moment ago, and a
            # COUNT per batch on the hot path would only confirm that.
            await self._update_pending()
        else:
            self._metrics.outbox_pending.labels(self._metrics.service).set(0)
        if failures:
            raise DeliveryError(
                f"{len(failures)} of {len(rows)} outbox records not acknowledged: {failures[0]}"
            )
        return len(acked)

    async def _update_pending(self) -> None:
        async with self._db.read() as session:
            pending = (await session.execute(select(func.count()).select_from(outbox))).scalar_one()
        self._metrics.outbox_pending.labels(self._metrics.service).set(pending)
