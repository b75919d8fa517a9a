"""The records shopstream does not produce itself: the app edge's ad impressions and clicks and the
social platform's profiles and stats, published with the platform's EventProducer (idempotent,
CloudEvents headers) and keyed as protos/topics.yaml says."""

from __future__ import annotations

import asyncio
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
    ) -> None:
        """Queue one record (fire-and-forget); its delivery is counted under `counter`.

        The event id derives from the run and `logical_id`, so a re-sent record is recognisably
        the same event to consumers that deduplicate by ce_id.
        """
        await self._limiter.take()
        meta = CloudEventMeta(
            id=event_id(self._run_id, topic, logical_id),
            type=type_name(message),
            source=EDGE_SOURCE if topic.startswith("ads.") else SOCIAL_SOURCE,
            time=at or datetime.now(UTC),
            traceparent=outgoing_traceparent(),
            subject=key,
        )
        loop = self._loop
        ledger = self._ledger

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            # Runs on the producer's poll thread: hand the count to the event loop.
            name = counter if err is None else "delivery_failed"
            loop.call_soon_threadsafe(ledger.traffic.update, {name: 1})

        self._producer.publish(topic, key, message, meta=meta, on_delivery=delivered)
        self.queued += 1

    async def close(self, timeout_s: float = 30.0) -> int:
        """Flush and stop; returns the records Kafka never acknowledged."""
        remaining = await asyncio.to_thread(self._producer.close, timeout_s)
        # Let the last delivery callbacks reach the ledger.
        await asyncio.sleep(0.05)
        return remaining
