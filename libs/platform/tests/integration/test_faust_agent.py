"""A Faust app from the factory, on the real broker: tables count, poison pills go to the DLQ."""

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from google.protobuf.message import Message

from shopstream.platform.v1 import heartbeat_pb2
from shopstream_platform.faust_app import Batching, make_faust_app, protobuf_agent, run_faust_app
from shopstream_platform.faust_batch import BatchedTable, StreamOutputs
from shopstream_platform.kafka.cloudevents import headers_dict
from shopstream_platform.kafka.dispatch import Dispatcher
from shopstream_platform.kafka.dlq import DeadLetterPublisher
from shopstream_platform.kafka.events import Event, Outcome
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.metrics import PlatformMetrics
from shopstream_platform.settings import ConsumerSettings, KafkaSettings
from shopstream_platform.testing import read_all_async

pytestmark = pytest.mark.integration


async def test_agent_counts_with_dedup_and_dead_letters_garbage(
    kafka_settings: KafkaSettings, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic("faust", partitions=1)
    app = make_faust_app(
        f"test-{uuid.uuid4().hex[:8]}",
        kafka_settings,
        store="memory",
        data_dir=tmp_path,
        partitions=1,
    )
    counts = app.Table("beats", default=int, partitions=1)
    seen = app.Table("seen", default=bool, partitions=1)
    metrics = PlatformMetrics("test")
    producer = EventProducer(kafka_settings, "shopstream/test", metrics)

    async def on_beat(event: Event[Message]) -> Outcome:
        # Exact under redelivery: a table of event ids makes the count idempotent.
        if seen[event.meta.id]:
            return Outcome.DUPLICATE
        seen[event.meta.id] = True
        counts[event.key] += 1
        return Outcome.PROCESSED

    dispatcher = Dispatcher(
        group_id=app.conf.id,
        routes={heartbeat_pb2.Heartbeat: on_beat},  # type: ignore[dict-item]
        dead_letters=DeadLetterPublisher(producer, metrics),
        metrics=metrics,
        settings=ConsumerSettings(),
    )
    protobuf_agent(app, topic, dispatcher, metrics)

    first = await producer.publish_and_wait(topic, "a", heartbeat_pb2.Heartbeat(sequence=1))
    await producer.produce_raw_and_wait(topic, b"a", b"\xffgarbage", [])
    await producer.publish_and_wait(topic, "a", heartbeat_pb2.Heartbeat(sequence=2))
    await producer.publish_and_wait(
        topic, "a", heartbeat_pb2.Heartbeat(sequence=1), meta=first
    )  # redelivery
    await producer.publish_and_wait(topic, "b", heartbeat_pb2.Heartbeat(sequence=1))

    await app.start()
    try:
        for _ in range(300):
            if counts["a"] == 2 and counts["b"] == 1:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # would a duplicate still be counted? give it the chance
        assert (counts["a"], counts["b"]) == (2, 1)
    finally:
        await app.stop()
        producer.close()

    [dead] = await read_all_async(kafka_settings, topic + ".dlq", expect=1)
    headers = headers_dict(dead.headers())
    assert headers["dlq_original_offset"] == "1"
    assert headers["dlq_error_type"] == "MissingHeaderError"
    assert app.conf.topic_replication_factor == kafka_settings.replication_factor
    assert app.conf.processing_guarantee.value == "at_least_once"


class StillDown(ConnectionError):
    """A dependency that does not come back within the retries."""


async def test_an_agent_whose_retries_run_out_ends_the_worker_without_committing_past_it(
    kafka_settings: KafkaSettings, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic("faust-stall", partitions=1)
    app_id = f"test-stall-{uuid.uuid4().hex[:8]}"
    app = make_faust_app(app_id, kafka_settings, store="memory", data_dir=tmp_path, partitions=1)
    metrics = PlatformMetrics("test")
    producer = EventProducer(kafka_settings, "shopstream/test", metrics)
    handled: list[int] = []

    async def on_beat(event: Event[Message]) -> Outcome:
        assert isinstance(event.message, heartbeat_pb2.Heartbeat)
        if event.message.sequence == 2:
            raise StillDown("the dependency is down")
        handled.append(event.message.sequence)
        return Outcome.PROCESSED

    async def flush() -> None:
        pass

    dispatcher = Dispatcher(
        group_id=app_id,
        routes={heartbeat_pb2.Heartbeat: on_beat},  # type: ignore[dict-item]
        dead_letters=DeadLetterPublisher(producer, metrics),
        metrics=metrics,
        settings=ConsumerSettings(max_attempts=2, backoff_initial_s=0.05),
        transient=(StillDown,),
    )
    protobuf_agent(app, topic, dispatcher, metrics, batch=Batching(flush=flush))
    for sequence in (1, 2, 3):
        await producer.publish_and_wait(topic, "a", heartbeat_pb2.Heartbeat(sequence=sequence))

    # Faust's own supervisor would restart the agent and go on with record 3; the worker ends.
    with pytest.raises(RuntimeError, match="the dependency is down"):
        await asyncio.wait_for(run_faust_app(app, kafka_settings), timeout=120)
    producer.close()
    assert 3 not in handled
    # Nothing was committed past the record that could not be handled.
    consumer = Consumer({"bootstrap.servers": kafka_settings.bootstrap_servers, "group.id": app_id})
    try:
        [committed] = consumer.committed([TopicPartition(topic, 0)], timeout=10)
    finally:
        consumer.close()
    assert committed.offset <= 1


@pytest.mark.parametrize("store", ["rocksdb", "memory"])
async def test_batched_tables_count_every_key_in_every_partition(
    kafka_settings: KafkaSettings, new_topic: Callable[..., str], tmp_path: Path, store: str
) -> None:
    """RocksDB keeps a database per partition and picks it from the event being processed:
    batched writes happen after their events, so the partition must be carried with them."""
    topic = new_topic("faust-batch", partitions=3)
    app = make_faust_app(
        f"test-batch-{uuid.uuid4().hex[:8]}",
        kafka_settings,
        store=store,  # type: ignore[arg-type]
        data_dir=tmp_path,
        partitions=3,
    )
    metrics = PlatformMetrics("test")
    producer = EventProducer(kafka_settings, "shopstream/test", metrics)
    outputs = StreamOutputs(producer)
    counts = BatchedTable(app.Table("counts", default=None, partitions=3), outputs)

    async def on_beat(event: Event[Message]) -> Outcome:
        assert event.key is not None
        counts.set(event.key, (counts.get(event.key) or 0) + 1, event.partition)
        return Outcome.PROCESSED

    dispatcher = Dispatcher(
        group_id=app.conf.id,
        routes={heartbeat_pb2.Heartbeat: on_beat},  # type: ignore[dict-item]
        dead_letters=DeadLetterPublisher(producer, metrics),
        metrics=metrics,
        settings=ConsumerSettings(),
    )
    protobuf_agent(app, topic, dispatcher, metrics, batch=Batching(flush=counts.flush))
    keys = [f"k{i}" for i in range(12)]
    for round_ in range(3):
        for key in keys:
            producer.publish(topic, key, heartbeat_pb2.Heartbeat(sequence=round_))
    producer.flush()

    worker = asyncio.ensure_future(run_faust_app(app, kafka_settings))
    try:
        for _ in range(300):
            if worker.done() or all(counts.get(k) == 3 for k in keys):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)  # a last flush
        assert not worker.done(), worker.exception()
        assert {k: counts.get(k) for k in keys} == dict.fromkeys(keys, 3)
        # Written to the store itself, each key in its own partition's database.
        assert {k: counts.table.get(k) for k in keys} == dict.fromkeys(keys, 3)
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError, RuntimeError):
            await worker
        producer.close()
