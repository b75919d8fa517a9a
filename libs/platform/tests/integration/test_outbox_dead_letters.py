"""No outbox row can stop the relay (issue 15, 2.7), against the real broker on SQLite and PostgreSQL.

A row the broker can never accept is dead-lettered with its reason; the rows behind it are
published exactly once each (counted on the topic); the relay's shutdown drain is bounded.
"""

import asyncio
import base64
import os
import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from sqlalchemy import func, select

from shopstream.platform.v1 import heartbeat_pb2
from shopstream_platform.db.database import Database
from shopstream_platform.db.outbox import EventTooLargeError, Outbox, OutboxRelay
from shopstream_platform.db.tables import outbox as outbox_table
from shopstream_platform.db.tables import outbox_dead_letters
from shopstream_platform.kafka.cloudevents import CloudEventMeta, headers_dict
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.metrics import PlatformMetrics
from shopstream_platform.settings import KafkaSettings
from shopstream_platform.testing import read_all_async

pytestmark = pytest.mark.integration


def beat(sequence: int, padding: int = 0) -> heartbeat_pb2.Heartbeat:
    # instance_id is a string field: padding makes the event as large as a test needs, random so
    # that the producer's compression cannot shrink it under the broker's limit.
    text = base64.b64encode(os.urandom(padding * 3 // 4 + 1)).decode()[:padding]
    return heartbeat_pb2.Heartbeat(sequence=sequence, instance_id=text)


def permissive_outbox() -> Outbox:
    """Writes rows the default guard in Outbox.add would refuse: rows written before the guard
    existed, or by a writer whose limit is above what the broker accepts on some topic."""
    return Outbox(source="shopstream/test", max_event_bytes=100_000_000)


async def write(
    database: Database, outbox: Outbox, rows: list[tuple[str, heartbeat_pb2.Heartbeat]]
) -> list[CloudEventMeta]:
    async with database.transaction() as session:
        return [await outbox.add(session, topic, "k", message) for topic, message in rows]


async def count(database: Database, table: object) -> int:
    async with database.read() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())  # type: ignore[arg-type]


def small_record_topic(kafka: KafkaSettings, max_message_bytes: int) -> str:
    """A topic whose broker-side record limit is small: the broker (not the client) refuses."""
    name = f"outbox-small.{uuid.uuid4().hex[:10]}.v1"
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
    futures = admin.create_topics(
        [
            NewTopic(
                name,
                num_partitions=1,
                replication_factor=1,
                config={"max.message.bytes": str(max_message_bytes), "retention.ms": "3600000"},
            )
        ]
    )
    futures[name].result(30)
    return name


async def test_oversized_row_is_dead_lettered_and_later_rows_are_published_exactly_once(
    database: Database, kafka_settings: KafkaSettings, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("outbox")
    outbox = permissive_outbox()
    metrics = PlatformMetrics("test")
    producer = EventProducer(kafka_settings, "shopstream/test", metrics)
    relay = OutboxRelay(database, outbox, producer, metrics, batch=100, poll_interval_s=0.02)
    metas = await write(
        database,
        outbox,
        [(topic, beat(1)), (topic, beat(2, padding=1_500_000)), (topic, beat(3)), (topic, beat(4))],
    )
    # Run the relay for a while, as a service would: before the fix it re-sent rows 3 and 4
    # about once a second behind the row that could not be published.
    task = asyncio.create_task(relay.run())
    await asyncio.sleep(4)
    more = await write(database, outbox, [(topic, beat(5))])
    await asyncio.sleep(1)
    relay.stop()
    await asyncio.wait_for(task, 10)
    producer.close()

    records = await read_all_async(kafka_settings, topic, expect=10, timeout_s=5)
    ids = [headers_dict(r.headers())["ce_id"] for r in records]
    assert ids == [metas[0].id, metas[2].id, metas[3].id, more[0].id]  # each exactly once, in order
    assert await count(database, outbox_table) == 0
    async with database.read() as session:
        [dead] = (await session.execute(select(outbox_dead_letters))).all()
    assert dead.ce_id == metas[1].id and dead.topic == topic
    assert "exceeds the 1000000-byte limit" in dead.reason
    assert heartbeat_pb2.Heartbeat.FromString(dead.payload).sequence == 2  # kept for inspection
    sample = metrics.registry.get_sample_value
    labels = {"service": "test", "topic": topic, "reason": "too_large"}
    assert sample("shopstream_outbox_dead_lettered_total", labels) == 1
    assert sample("shopstream_outbox_relayed_total", {"service": "test", "topic": topic}) == 4
    assert sample("shopstream_outbox_pending_records", {"service": "test"}) == 0
    assert sample("shopstream_outbox_oldest_pending_age_seconds", {"service": "test"}) == 0


async def test_record_the_broker_refuses_is_dead_lettered_with_kafkas_reason(
    database: Database, kafka_settings: KafkaSettings, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("outbox")
    small = small_record_topic(kafka_settings, 20_000)
    outbox = permissive_outbox()
    metrics = PlatformMetrics("test")
    producer = EventProducer(kafka_settings, "shopstream/test", metrics)
    relay = OutboxRelay(database, outbox, producer, metrics, batch=100)
    metas = await write(
        database,
        outbox,
        [(topic, beat(1)), (small, beat(2, padding=200_000)), (topic, beat(3)), (small, beat(4))],
    )
    assert await relay.relay_once() == 4
    # The producer is not wedged by the refusal: the next rows go out on both topics.
    later = await write(database, outbox, [(small, beat(5)), (topic, beat(6))])
    assert await relay.relay_once() == 2
    producer.close()

    on_topic = await read_all_async(kafka_settings, topic, expect=10, timeout_s=5)
    assert [headers_dict(r.headers())["ce_id"] for r in on_topic] == [
        metas[0].id,
        metas[2].id,
        later[1].id,
    ]
    on_small = await read_all_async(kafka_settings, small, expect=10, timeout_s=5)
    assert [headers_dict(r.headers())["ce_id"] for r in on_small] == [metas[3].id, later[0].id]
    async with database.read() as session:
        [dead] = (await session.execute(select(outbox_dead_letters))).all()
    assert dead.ce_id == metas[1].id
    assert dead.reason.startswith("refused by Kafka")
    assert "too large" in dead.reason.lower()
    labels = {"service": "test", "topic": small, "reason": "msg_size_too_large"}
    assert metrics.registry.get_sample_value("shopstream_outbox_dead_lettered_total", labels) == 1


async def test_record_the_client_refuses_is_dead_lettered(
    database: Database, kafka_settings: KafkaSettings, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("outbox")
    outbox = permissive_outbox()
    metrics = PlatformMetrics("test")
    producer = EventProducer(kafka_settings, "shopstream/test", metrics)
    # A relay limit above the producer's: the producer's own check refuses the record.
    relay = OutboxRelay(database, outbox, producer, metrics, max_record_bytes=10_000_000)
    metas = await write(database, outbox, [(topic, beat(1, padding=2_000_000)), (topic, beat(2))])
    assert await relay.relay_once() == 2
    producer.close()
    [record] = await read_all_async(kafka_settings, topic, expect=2, timeout_s=5)
    assert headers_dict(record.headers())["ce_id"] == metas[1].id
    async with database.read() as session:
        [dead] = (await session.execute(select(outbox_dead_letters))).all()
    assert dead.ce_id == metas[0].id and "refused by Kafka" in dead.reason


async def test_unreachable_broker_keeps_rows_shows_their_age_and_shutdown_still_ends(
    database: Database,
) -> None:
    unreachable = KafkaSettings(bootstrap_servers="127.0.0.1:1", delivery_timeout_ms=1_000)
    outbox = permissive_outbox()
    metrics = PlatformMetrics("test")
    producer = EventProducer(unreachable, "shopstream/test", metrics)
    relay = OutboxRelay(
        database, outbox, producer, metrics, retry_backoff_s=0.2, drain_timeout_s=2.0
    )
    await write(database, outbox, [("nowhere.v1", beat(1)), ("nowhere.v1", beat(2))])
    task = asyncio.create_task(relay.run())
    await asyncio.sleep(3)
    sample = metrics.registry.get_sample_value
    assert sample("shopstream_outbox_pending_records", {"service": "test"}) == 2
    assert (sample("shopstream_outbox_oldest_pending_age_seconds", {"service": "test"}) or 0) > 1
    assert relay.failing_for_s > 0
    started = time.monotonic()
    relay.stop()
    await asyncio.wait_for(task, 10)  # a SIGTERM does not wait for a broker that is away
    assert time.monotonic() - started < 5
    producer.close(1)
    # Nothing lost and nothing dead-lettered: a broker that is away is not the row's fault.
    assert await count(database, outbox_table) == 2
    assert await count(database, outbox_dead_letters) == 0


async def test_outbox_refuses_an_event_larger_than_kafka_accepts_at_write_time(
    database: Database,
) -> None:
    with pytest.raises(EventTooLargeError) as error:
        async with database.transaction() as session:
            await Outbox(source="shopstream/test").add(
                session, "t.v1", "k", beat(1, padding=1_200_000)
            )
    assert error.value.field == "request"
    assert "above the 1000000-byte record limit" in str(error.value)
    assert await count(database, outbox_table) == 0
