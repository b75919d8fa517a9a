"""The producer's batch path against the real broker: every record arrives once with its own id,
its key and its headers, a key's records share a partition in their order, and each record's
delivery report reaches it."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable

import pytest

from shopstream.platform.v1 import heartbeat_pb2
from shopstream_platform.kafka.cloudevents import headers_dict, parse_meta
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.settings import KafkaSettings
from shopstream_platform.testing import read_all

pytestmark = pytest.mark.integration

N = 3_000
KEYS = 40


async def test_a_published_batch_arrives_whole_keyed_and_in_order(
    kafka_settings: KafkaSettings, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("producer-batch", partitions=6)
    producer = EventProducer(kafka_settings, "shopstream/test")
    records = [
        (f"inst-{i % KEYS}", heartbeat_pb2.Heartbeat(service="catalog", sequence=i))
        for i in range(N)
    ]
    try:
        for start in range(0, N, 1_000):
            producer.publish_batch(topic, records[start : start + 1_000], subjects=True)
        assert producer.flush(30) == 0
    finally:
        producer.close()

    read = read_all(kafka_settings, topic, expect=N, timeout_s=60)
    assert len(read) == N
    partitions: dict[bytes, set[int]] = defaultdict(set)
    sequences: dict[tuple[bytes, int], list[int]] = defaultdict(list)
    ids = set()
    for msg in read:
        key = msg.key() or b""
        meta = parse_meta(headers_dict(msg.headers()))
        beat = heartbeat_pb2.Heartbeat.FromString(msg.value() or b"")
        assert meta.type == "shopstream.platform.v1.Heartbeat"
        assert meta.source == "shopstream/test"
        assert meta.subject == key.decode()
        assert key == f"inst-{beat.sequence % KEYS}".encode()
        ids.add(meta.id)
        partitions[key].add(msg.partition() or 0)
        sequences[(key, msg.partition() or 0)].append(beat.sequence)
    assert len(ids) == N
    assert len(partitions) == KEYS
    assert all(len(p) == 1 for p in partitions.values())  # a key stays on one partition
    assert len({next(iter(p)) for p in partitions.values()}) > 1  # and keys spread over several
    assert all(s == sorted(s) for s in sequences.values())  # in publish order


async def test_produce_batch_reports_each_records_delivery(
    kafka_settings: KafkaSettings, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("producer-batch", partitions=6)
    producer = EventProducer(kafka_settings, "shopstream/test")
    records = [
        (topic, f"k{i % 9}".encode(), f"value {i}".encode(), [("ce_id", f"id-{i}")])
        for i in range(500)
    ]
    records.append((topic, b"", b"no key", []))
    try:
        delivery = producer.produce_batch(records, asyncio.get_running_loop())
        errors = await asyncio.wait_for(delivery.done(), 30)
    finally:
        producer.close()
    assert errors == [None] * 501
    assert len(read_all(kafka_settings, topic, expect=501, timeout_s=30)) == 501
