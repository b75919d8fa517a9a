"""The consumer loop against the real broker: poison pills go to the DLQ, good records go on."""

import asyncio
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, TopicPartition
from google.protobuf.message import Message

from shopstream.platform.v1 import heartbeat_pb2
from shopstream_platform.kafka.cloudevents import headers_dict
from shopstream_platform.kafka.consumer import ConsumerStalledError, EventConsumer
from shopstream_platform.kafka.dlq import DeadLetterPublisher
from shopstream_platform.kafka.events import Event, InvalidEventError, Outcome, TransientError
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.metrics import PlatformMetrics
from shopstream_platform.settings import ConsumerSettings, KafkaSettings
from shopstream_platform.testing import read_all

pytestmark = pytest.mark.integration

FAST = ConsumerSettings(
    poll_timeout_s=0.1, backoff_initial_s=0.01, backoff_max_s=0.05, auto_commit_interval_ms=200
)


def make_consumer(
    kafka: KafkaSettings,
    topic: str,
    handler: Callable[[Event[Message]], object],
    producer: EventProducer,
    metrics: PlatformMetrics,
    settings: ConsumerSettings = FAST,
) -> EventConsumer:
    return EventConsumer(
        kafka=kafka,
        settings=settings,
        group_id=f"test-{uuid.uuid4().hex[:8]}",
        topics=[topic],
        routes={heartbeat_pb2.Heartbeat: handler},  # type: ignore[dict-item]
        dead_letters=DeadLetterPublisher(producer, metrics),
        metrics=metrics,
    )


async def wait_until(predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def committed_lag(kafka: KafkaSettings, group: str, topic: str) -> int:
    probe = Consumer({"bootstrap.servers": kafka.bootstrap_servers, "group.id": group})
    try:
        [tp] = probe.committed([TopicPartition(topic, 0)], timeout=10)
        _low, high = probe.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        return high - max(tp.offset, 0)
    finally:
        probe.close()


async def test_garbage_goes_to_dlq_with_coordinates_and_next_record_is_processed(
    kafka_settings: KafkaSettings, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("consumer")
    metrics = PlatformMetrics("test")
    producer = EventProducer(kafka_settings, "shopstream/test", metrics)
    seen: list[int] = []

    async def handle(event: Event[Message]) -> Outcome:
        assert isinstance(event.message, heartbeat_pb2.Heartbeat)
        seen.append(event.message.sequence)
        return Outcome.PROCESSED

    # 1: no headers at all; 2: a valid event; 3: right headers, bytes that are no Heartbeat.
    await producer.produce_raw_and_wait(topic, b"k", b"\x00garbage\xff", [])
    await producer.publish_and_wait(topic, "k", heartbeat_pb2.Heartbeat(sequence=1))
    bad_meta = producer.meta_for(heartbeat_pb2.Heartbeat())
    await producer.produce_raw_and_wait(topic, b"k", b"\xff\xff\xff\xff", bad_meta.to_headers())
    await producer.publish_and_wait(topic, "k", heartbeat_pb2.Heartbeat(sequence=2))

    consumer = make_consumer(kafka_settings, topic, handle, producer, metrics)
    task = asyncio.create_task(consumer.run())
    await wait_until(lambda: seen == [1, 2])
    consumer.stop()
    await task
    producer.close()

    dead = read_all(kafka_settings, topic + ".dlq", expect=2)
    assert len(dead) == 2
    first, second = (headers_dict(r.headers()) for r in dead)
    assert dead[0].value() == b"\x00garbage\xff"
    assert first["dlq_original_topic"] == topic
    assert first["dlq_original_partition"] == "0"
    assert first["dlq_original_offset"] == "0"
    assert first["dlq_consumer_group"] == consumer.group_id
    assert first["dlq_error_type"] == "MissingHeaderError"
    assert "ce_id" in first["dlq_error_message"]
    assert second["dlq_original_offset"] == "2"
    assert second["dlq_error_type"] == "UndecodableEventError"
    assert second["ce_id"] == bad_meta.id  # original headers kept for re-drive
    # Everything was acknowledged, the poison pills included: the group's lag is back to 0.
    assert committed_lag(kafka_settings, consumer.group_id, topic) == 0
    dlq_count = metrics.registry.get_sample_value(
        "shopstream_dlq_records_total",
        {"service": "test", "topic": topic, "error_type": "MissingHeaderError"},
    )
    assert dlq_count == 1


async def test_transient_failures_are_retried_and_invalid_events_dead_lettered(
    kafka_settings: KafkaSettings, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("consumer")
    metrics = PlatformMetrics("test")
    producer = EventProducer(kafka_settings, "shopstream/test", metrics)
    attempts: dict[int, int] = {}
    done: list[int] = []

    async def handle(event: Event[Message]) -> None:
        assert isinstance(event.message, heartbeat_pb2.Heartbeat)
        seq = event.message.sequence
        attempts[seq] = attempts.get(seq, 0) + 1
        if seq == 1 and attempts[seq] < 3:
            raise TransientError("database briefly unavailable")
        if seq == 2:
            raise InvalidEventError("sequence 2 is not allowed")
        if seq == 3:
            raise KeyError("a bug in the handler")
        done.append(seq)

    for seq in (1, 2, 3, 4):
        await producer.publish_and_wait(topic, "k", heartbeat_pb2.Heartbeat(sequence=seq))
    consumer = make_consumer(kafka_settings, topic, handle, producer, metrics)
    task = asyncio.create_task(consumer.run())
    await wait_until(lambda: done == [1, 4])
    consumer.stop()
    await task
    producer.close()

    assert attempts[1] == 3
    dead = [headers_dict(r.headers()) for r in read_all(kafka_settings, topic + ".dlq", expect=2)]
    assert [(h["dlq_original_offset"], h["dlq_error_type"]) for h in dead] == [
        ("1", "InvalidEventError"),
        ("2", "KeyError"),
    ]


async def test_exhausted_retries_stop_the_loop_without_acknowledging(
    kafka_settings: KafkaSettings, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("consumer")
    metrics = PlatformMetrics("test")
    producer = EventProducer(kafka_settings, "shopstream/test", metrics)

    async def always_down(event: Event[Message]) -> None:
        raise TransientError("still down")

    await producer.publish_and_wait(topic, "k", heartbeat_pb2.Heartbeat(sequence=1))
    settings = FAST.model_copy(update={"max_attempts": 3})
    consumer = make_consumer(kafka_settings, topic, always_down, producer, metrics, settings)
    with pytest.raises(ConsumerStalledError):
        await asyncio.wait_for(consumer.run(), 30)
    producer.close()
    # Not acknowledged: a restarted consumer would get the record again.
    assert committed_lag(kafka_settings, consumer.group_id, topic) == 1
