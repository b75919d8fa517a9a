"""The records shopstream does not produce itself: the app edge's ad impressions and clicks and the
social platform's profiles and stats, published with the platform's EventProducer (idempotent,
CloudEvents headers) and keyed as protos/topics.yaml says."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from confluent_kafka import KafkaError, Message
from google.protobuf.message import Message as ProtoMessage
from google.protobuf.timestamp_pb2 import Timestamp

from shopstream_platform.kafka.cloudevents import CloudEventMeta
from shopstream_platform.kafka.codec import type_name
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.settings import KafkaSettings
from shopstream_platform.tracing import outgoing_traceparent
from shopstream_simulator.ids import event_id
from shopstream_simulator.ledger import Ledger
from shopstream_simulator.ratelimit import Limiter

IMPRESSIONS = "ads.impressions.v1"  # key: buyer id
CLICKS = "ads.clicks.v1"  # key: install id (buyer id without one)
PROFILES = "social.creator-profiles.v1"  # key: creator id
CONTENT = "social.content-stats.v1"  # key: creator id
LIVE_STATS = "social.live-stats.v1"  # key: live session id
EDGE_SOURCE = "simulator/app-edge"
SOCIAL_SOURCE = "simulator/social-platform"


def timestamp(at: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(at)
    return ts


class Edge:
    def __init__(self, kafka: KafkaSettings, run_id: str, ledger: Ledger, limiter: Limiter) -> None:
        self._producer = EventProducer(kafka, EDGE_SOURCE, client_id=f"shopstream-sim-{run_id}")
        self._run_id = run_id
        self._ledger = ledger
        self._limiter = limiter
        self._loop = asyncio.get_running_loop()
        self.queued = 0
        # Delivery reports arrive on the producer's poll thread: counted here under a lock and
        # handed to the ledger in one call per burst (not one loop wake-up per record).
        self._acked: Counter[tuple[str, str]] = Counter()
        self._acked_lock = threading.Lock()
        self._callbacks: dict[tuple[str, str], Callable[[KafkaError | None, Message], None]] = {}

    def limit(self, limiter: Limiter) -> None:
        """From now on, records wait for this limiter (set-up traffic is not rate-limited)."""
        self._limiter = limiter

    async def publish(
        self,
        topic: str,
        key: str,
        message: ProtoMessage,
        *,
        logical_id: str,
        counter: str,
        at: datetime | None = None,
        limited: bool = True,
        tally: str = "",
    ) -> None:
        """Queue one record (fire-and-forget); its delivery is counted under `counter`.

        The event id derives from the run and `logical_id`, so a re-sent record is recognisably
        the same event to consumers that deduplicate by ce_id. `limited=False`: not held by the
        rate limit (the bots', whose burst must stay a burst when the buyers' traffic queues).
        `tally`: a campaign id whose acknowledged impressions the ledger counts (`Ledger.served`).
        """
        if limited:
            await self._limiter.take()
        meta = CloudEventMeta(
            id=event_id(self._run_id, topic, logical_id),
            type=type_name(message),
            source=EDGE_SOURCE if topic.startswith("ads.") else SOCIAL_SOURCE,
            time=at or datetime.now(UTC),
            traceparent=outgoing_traceparent(),
            subject=key,
        )
        callback = self._callbacks.get((counter, tally))
        if callback is None:
            callback = self._callbacks[(counter, tally)] = self._delivery_callback(counter, tally)
        self._producer.publish(topic, key, message, meta=meta, on_delivery=callback)
        self.queued += 1

    async def publish_many(
        self,
        topic: str,
        records: Sequence[tuple[str, ProtoMessage, str, str]],
        *,
        counter: str,
        at: datetime | None = None,
        limited: bool = True,
    ) -> None:
        """Queue (key, message, logical id, tally) records at once, through the producer's batch
        path (headers built once, one shared delivery callback per tally); as `publish` each."""
        if limited:
            for _ in records:
                await self._limiter.take()
        by_tally: dict[str, list[tuple[str, ProtoMessage, str, str]]] = {}
        for record in records:
            by_tally.setdefault(record[3], []).append(record)
        at = at or datetime.now(UTC)
        source = EDGE_SOURCE if topic.startswith("ads.") else SOCIAL_SOURCE
        for tally, group in by_tally.items():
            callback = self._callbacks.get((counter, tally))
            if callback is None:
                callback = self._callbacks[(counter, tally)] = self._delivery_callback(
                    counter, tally
                )
            self._producer.publish_batch(
                topic,
                [(key, message) for key, message, _, _ in group],
                time=at,
                event_ids=[event_id(self._run_id, topic, logical) for _, _, logical, _ in group],
                subjects=True,
                source=source,
                on_delivery=callback,
            )
        self.queued += len(records)

    def _delivery_callback(
        self, counter: str, tally: str
    ) -> Callable[[KafkaError | None, Message], None]:
        def delivered(err: KafkaError | None, _msg: Message) -> None:
            # Runs on the producer's poll thread.
            with self._acked_lock:
                first = not self._acked
                self._acked[(counter, tally) if err is None else ("delivery_failed", "")] += 1
            if first:
                self._loop.call_soon_threadsafe(self._settle)

        return delivered

    def _settle(self) -> None:
        """Move the delivery counts gathered on the poll thread into the ledger."""
        with self._acked_lock:
            acked, self._acked = self._acked, Counter()
        for (counter, tally), n in acked.items():
            self._ledger.traffic[counter] += n
            if tally:
                self._ledger.served[tally] += n

    async def close(self, timeout_s: float = 30.0) -> int:
        """Flush and stop; returns the records Kafka never acknowledged."""
        remaining = await asyncio.to_thread(self._producer.close, timeout_s)
        # Let the last delivery callbacks reach the ledger.
        await asyncio.sleep(0.05)
        self._settle()
        return remaining
