"""A protobuf event produced through the library, read back by a plain confluent-kafka consumer."""

from collections.abc import Callable

import pytest

from shopstream.platform.v1 import heartbeat_pb2
from shopstream_platform.kafka.cloudevents import headers_dict
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.settings import KafkaSettings
from shopstream_platform.testing import read_all
from shopstream_platform.tracing import current_traceparent, new_traceparent

pytestmark = pytest.mark.integration


async def test_plain_consumer_sees_protobuf_and_cloudevents_headers(
    kafka_settings: KafkaSettings, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("producer")
    producer = EventProducer(kafka_settings, "shopstream/test")
    parent = new_traceparent()
    token = current_traceparent.set(parent)
    try:
        meta = await producer.publish_and_wait(
            topic, "inst-1", heartbeat_pb2.Heartbeat(service="catalog", sequence=3)
        )
    finally:
        current_traceparent.reset(token)
        producer.close()

    [record] = read_all(kafka_settings, topic, expect=1)
    headers = headers_dict(record.headers())
    assert record.key() == b"inst-1"
    assert headers["ce_id"] == meta.id
    assert headers["ce_type"] == "shopstream.platform.v1.Heartbeat"
    assert headers["ce_source"] == "shopstream/test"
    assert headers["ce_specversion"] == "1.0"
    assert headers["content-type"] == "application/protobuf"
    assert headers["ce_time"].endswith("Z")
    # Same trace as the work that produced it, new span.
    assert headers["traceparent"].split("-")[1] == parent.split("-")[1]
    decoded = heartbeat_pb2.Heartbeat.FromString(record.value() or b"")
    assert decoded.service == "catalog" and decoded.sequence == 3


async def test_librdkafka_statistics_reach_the_metrics(
    kafka_settings: KafkaSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from shopstream_platform.kafka import producer as producer_module
    from shopstream_platform.metrics import PlatformMetrics

    monkeypatch.setattr(producer_module, "STATS_INTERVAL_MS", 100)
    metrics = PlatformMetrics("stats-test")
    producer = EventProducer(kafka_settings, "shopstream/test", metrics)
    try:
        for _ in range(100):
            rtt = metrics.registry.get_sample_value(
                "shopstream_kafka_broker_rtt_seconds", {"service": "stats-test", "broker": "1"}
            )
            queue = metrics.registry.get_sample_value(
                "shopstream_kafka_producer_queue_messages", {"service": "stats-test"}
            )
            if rtt is not None and queue is not None:
                break
            await asyncio.sleep(0.05)
        assert queue == 0 and rtt is not None and rtt >= 0
    finally:
        producer.close()
