"""The producer's batch path, against a stand-in for confluent-kafka's Producer (no I/O): every
record's CloudEvents headers, unique ids and traceparents, keys and values, one shared delivery
callback, and delivery reports matched to their records."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from shopstream.platform.v1 import heartbeat_pb2
from shopstream_platform.kafka import producer as producer_module
from shopstream_platform.kafka.cloudevents import format_time, headers_dict, parse_meta
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.kafka.producer_batch import RandomIds
from shopstream_platform.metrics import PlatformMetrics
from shopstream_platform.settings import KafkaSettings
from shopstream_platform.tracing import current_traceparent, new_traceparent

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


class FakeMessage:
    def __init__(self, topic: str, key: bytes | None, value: bytes | None, partition: int) -> None:
        self._topic, self._key, self._value, self._partition = topic, key, value, partition

    def topic(self) -> str:
        return self._topic

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def partition(self) -> int:
        return self._partition

    def headers(self) -> None:
        return None  # as in a real delivery report


class FakeProducer:
    """Keeps what is produced; `deliver` runs the delivery callbacks as librdkafka would."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.produced: list[dict[str, Any]] = []
        self.refuse: set[bytes] = set()  # values whose produce() raises, as librdkafka may
        self._lock = threading.Lock()

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        headers: Any = None,
        on_delivery: Callable[..., None] | None = None,
        partition: int | None = None,
    ) -> None:
        if value in self.refuse:
            raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "too large"))
        with self._lock:
            self.produced.append(
                {
                    "topic": topic,
                    "value": value,
                    "key": key,
                    "headers": headers,
                    "on_delivery": on_delivery,
                    # A key pins the partition, like the default partitioner.
                    "partition": hash(key) % 6 if key else len(self.produced) % 6,
                }
            )

    def deliver(
        self, order: list[int] | None = None, errors: dict[int, KafkaError] | None = None
    ) -> None:
        with self._lock:
            records, self.produced = self.produced, []
        for i in order if order is not None else range(len(records)):
            r = records[i]
            msg = FakeMessage(r["topic"], r["key"], r["value"], r["partition"])
            r["on_delivery"]((errors or {}).get(i), msg)

    def poll(self, timeout: float) -> int:
        time.sleep(min(timeout, 0.01))
        return 0

    def flush(self, timeout: float | None = None) -> int:
        return 0


@pytest.fixture
def producer(monkeypatch: pytest.MonkeyPatch) -> Iterator[EventProducer]:
    monkeypatch.setattr(producer_module, "Producer", FakeProducer)
    p = EventProducer(KafkaSettings(), "shopstream/test", PlatformMetrics("test"))
    yield p
    p.close(timeout_s=1)


def fake(p: EventProducer) -> FakeProducer:
    inner = p._producer
    assert isinstance(inner, FakeProducer)
    return inner


def beats(n: int) -> list[tuple[str, heartbeat_pb2.Heartbeat]]:
    return [
        (f"inst-{i % 7}", heartbeat_pb2.Heartbeat(service="catalog", sequence=i)) for i in range(n)
    ]


def test_every_record_has_its_own_id_and_span_and_the_shared_headers(
    producer: EventProducer,
) -> None:
    at = datetime(2026, 12, 6, 12, 0, 0, 123456, tzinfo=UTC)
    records = beats(500)
    assert producer.publish_batch("platform.heartbeats.v1", records, time=at) == 500

    produced = fake(producer).produced
    assert len(produced) == 500
    metas = [parse_meta(headers_dict(r["headers"])) for r in produced]
    assert len({m.id for m in metas}) == 500
    assert all(re.fullmatch(r"[0-9a-f]{32}", m.id) for m in metas)
    for m in metas:
        assert m.type == "shopstream.platform.v1.Heartbeat"
        assert m.source == "shopstream/test"
        assert m.time == at
        assert m.subject is None
    for r in produced:
        headers = headers_dict(r["headers"])
        assert headers["ce_specversion"] == "1.0"
        assert headers["content-type"] == "application/protobuf"
        assert headers["ce_time"] == format_time(at)
    spans = [TRACEPARENT.match(m.traceparent or "") for m in metas]
    assert all(spans)
    # No incoming trace: each record starts one of its own.
    assert len({s[1] for s in spans if s}) == 500
    assert len({s[2] for s in spans if s}) == 500
    # Keys and values are the records' own, in order.
    assert [r["key"] for r in produced] == [k.encode() for k, _ in records]
    assert [r["value"] for r in produced] == [m.SerializeToString() for _, m in records]
    assert {r["topic"] for r in produced} == {"platform.heartbeats.v1"}


def test_records_continue_the_incoming_trace(producer: EventProducer) -> None:
    parent = new_traceparent()
    token = current_traceparent.set(parent)
    try:
        producer.publish_batch("platform.heartbeats.v1", beats(50))
    finally:
        current_traceparent.reset(token)
    trace = parent.split("-")[1]
    spans = [
        TRACEPARENT.match(headers_dict(r["headers"])["traceparent"])
        for r in fake(producer).produced
    ]
    assert all(s and s[1] == trace and s[3] == parent.split("-")[3] for s in spans)
    assert len({s[2] for s in spans if s}) == 50


def test_given_ids_subjects_and_source(producer: EventProducer) -> None:
    records = beats(3)
    ids = ["a" * 32, "b" * 32, "c" * 32]
    producer.publish_batch(
        "social.content-stats.v1", records, event_ids=ids, subjects=True, source="simulator/x"
    )
    metas = [parse_meta(headers_dict(r["headers"])) for r in fake(producer).produced]
    assert [m.id for m in metas] == ids
    assert [m.subject for m in metas] == [k for k, _ in records]
    assert {m.source for m in metas} == {"simulator/x"}
    with pytest.raises(ValueError):
        producer.publish_batch("t", records, event_ids=ids[:2])


def test_one_shared_callback_counts_every_delivery(producer: EventProducer) -> None:
    seen: list[KafkaError | None] = []
    producer.publish_batch(
        "platform.heartbeats.v1", beats(100), on_delivery=lambda e, _m: seen.append(e)
    )
    producer.publish_batch("platform.heartbeats.v1", beats(100))
    produced = fake(producer).produced
    # No closure per record: one callback for the first batch, the counting one for the second.
    assert len({id(r["on_delivery"]) for r in produced[:100]}) == 1
    assert all(r["on_delivery"] == producer._count_delivery for r in produced[100:])
    assert len({id(r["on_delivery"]) for r in produced[100:]}) == 1
    fake(producer).deliver(errors={5: KafkaError(KafkaError._MSG_TIMED_OUT)})
    assert len(seen) == 100 and sum(e is not None for e in seen) == 1
    metrics = producer._metrics
    assert metrics is not None
    acked = metrics.events_produced.labels("test", "platform.heartbeats.v1", "acked")._value.get()
    failed = metrics.events_produced.labels("test", "platform.heartbeats.v1", "error")._value.get()
    assert (acked, failed) == (199, 1)


def test_random_ids_from_one_draw_are_distinct() -> None:
    ids = RandomIds(10_000, None)
    assert len({ids.event_id(i) for i in range(10_000)}) == 10_000
    assert len({ids.traceparent(i) for i in range(10_000)}) == 10_000
    # A malformed parent starts new traces, as tracing.child_traceparent does.
    assert TRACEPARENT.match(RandomIds(1, "garbage").traceparent(0))


async def test_batch_delivery_matches_reports_to_their_records(producer: EventProducer) -> None:
    records = [
        ("orders.v1", b"k1", b"v0", []),
        ("orders.v1", b"k2", b"v1", []),
        ("orders.v1", b"k1", b"v2", []),
        ("orders.v1", b"", b"v3", []),  # no key: a callback of its own
        ("other.v1", b"k1", b"v4", []),
        ("orders.v1", b"k2", b"v5", []),
        ("orders.v1", b"k3", b"too big", []),  # refused before it is queued
    ]
    fake(producer).refuse.add(b"too big")
    delivery = producer.produce_batch(records, asyncio.get_running_loop())
    assert not delivery.wait(0)
    # Reports in another order across keys; k2's two even out of produce order (the value
    # comparison finds the right record). Fake indexes are produce order: 0-5 (6 was refused).
    timed_out = KafkaError(KafkaError._MSG_TIMED_OUT)
    fake(producer).deliver(order=[5, 3, 4, 1, 0, 2], errors={0: timed_out, 5: timed_out})
    errors = await asyncio.wait_for(delivery.done(), 1)
    codes = [e.code() if e is not None else None for e in errors]
    assert codes == [
        KafkaError._MSG_TIMED_OUT,  # (k1, v0)
        None,
        None,
        None,
        None,
        KafkaError._MSG_TIMED_OUT,  # (k2, v5), reported before (k2, v1)
        KafkaError.MSG_SIZE_TOO_LARGE,  # refused by produce(): its error at once
    ]
    assert delivery.wait(0)


async def test_batch_delivery_waits_for_every_report(producer: EventProducer) -> None:
    delivery = producer.produce_batch(
        [("t", b"k", b"v1", []), ("t", b"k", b"v2", [])], asyncio.get_running_loop()
    )
    waiting = asyncio.ensure_future(delivery.done())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    fake(producer).deliver()
    assert await asyncio.wait_for(waiting, 1) == [None, None]
