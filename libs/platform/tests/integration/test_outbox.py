"""Outbox and inbox on SQLite and PostgreSQL against the real broker."""

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from google.protobuf.message import Message
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream.platform.v1 import heartbeat_pb2
from shopstream_platform.db.database import Database
from shopstream_platform.db.inbox import SqlInbox
from shopstream_platform.db.outbox import Outbox, OutboxRelay
from shopstream_platform.db.tables import outbox as outbox_table
from shopstream_platform.kafka.cloudevents import headers_dict
from shopstream_platform.kafka.consumer import EventConsumer
from shopstream_platform.kafka.dlq import DeadLetterPublisher
from shopstream_platform.kafka.events import Event
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.metrics import PlatformMetrics
from shopstream_platform.settings import ConsumerSettings, KafkaSettings
from shopstream_platform.testing import read_all

pytestmark = pytest.mark.integration

effects_meta = MetaData()
effects = Table(
    "effects",
    effects_meta,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sequence", Integer, nullable=False),
    Column("event_id", String(64), nullable=False),
)


def relay_for(db: Database, outbox: Outbox, producer: EventProducer) -> OutboxRelay:
    return OutboxRelay(db, outbox, producer, PlatformMetrics("test"), batch=100)


async def test_rolled_back_transaction_publishes_nothing_committed_one_does(
    database: Database, kafka_settings: KafkaSettings, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("outbox")
    outbox = Outbox(source="shopstream/test")
    with pytest.raises(RuntimeError):
        async with database.transaction() as session:
            await outbox.add(session, topic, "k", heartbeat_pb2.Heartbeat(sequence=1))
            raise RuntimeError("the state change failed")
    async with database.transaction() as session:
        metas = [
            await outbox.add(session, topic, "k", heartbeat_pb2.Heartbeat(sequence=seq))
            for seq in (2, 3, 4)
        ]
    producer = EventProducer(kafka_settings, "shopstream/test")
    assert await relay_for(database, outbox, producer).relay_once() == 3
    producer.close()

    records = read_all(kafka_settings, topic, expect=3)
    assert [heartbeat_pb2.Heartbeat.FromString(r.value() or b"").sequence for r in records] == [
        2,
        3,
        4,
    ]
    assert [headers_dict(r.headers())["ce_id"] for r in records] == [m.id for m in metas]
    async with database.read() as session:
        remaining = await session.execute(select(func.count()).select_from(outbox_table))
        assert remaining.scalar_one() == 0


async def test_writer_killed_between_commit_and_publish_is_delivered_after_restart(
    database: Database, kafka_settings: KafkaSettings, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("outbox")
    url = database.url.render_as_string(hide_password=False)
    writer = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("outbox_writer.py")), url, topic],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    event_id = (await asyncio.to_thread(writer.stdout.readline)).strip()
    os.kill(writer.pid, signal.SIGKILL)
    assert writer.wait(10) == -signal.SIGKILL
    assert read_all(kafka_settings, topic, expect=1, timeout_s=2) == []

    # "Restart": a new relay over the same database sends what the dead process committed.
    producer = EventProducer(kafka_settings, "shopstream/test")
    assert await relay_for(database, Outbox("shopstream/test"), producer).relay_once() == 1
    producer.close()
    [record] = read_all(kafka_settings, topic, expect=1)
    assert headers_dict(record.headers())["ce_id"] == event_id
    assert headers_dict(record.headers())["ce_source"] == "shopstream/killed-writer"


async def test_event_published_twice_is_applied_once(
    database: Database, kafka_settings: KafkaSettings, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("outbox")
    async with database.writer.begin() as conn:
        await conn.run_sync(effects_meta.create_all)
    outbox = Outbox(source="shopstream/test")
    producer = EventProducer(kafka_settings, "shopstream/test")
    relay = relay_for(database, outbox, producer)
    async with database.transaction() as session:
        await outbox.add(session, topic, "k", heartbeat_pb2.Heartbeat(sequence=5))
    async with database.read() as session:
        row = (await session.execute(select(outbox_table))).one()._asdict()
    assert await relay.relay_once() == 1
    # The state a relay leaves when it dies after Kafka's ack but before deleting the row: the
    # same row (same ce_id) is still there, so the next relay publishes it a second time.
    async with database.transaction() as session:
        await session.execute(insert(outbox_table).values(**row))
    assert await relay.relay_once() == 1
    assert len(read_all(kafka_settings, topic, expect=2)) == 2

    group = f"test-{uuid.uuid4().hex[:8]}"
    inbox = SqlInbox(database, group)
    applied: list[int] = []

    async def apply(event: Event[Message], session: AsyncSession) -> None:
        assert isinstance(event.message, heartbeat_pb2.Heartbeat)
        await session.execute(
            effects.insert().values(sequence=event.message.sequence, event_id=event.meta.id)
        )
        applied.append(event.message.sequence)

    metrics = PlatformMetrics("test")
    consumer = EventConsumer(
        kafka=kafka_settings,
        settings=ConsumerSettings(poll_timeout_s=0.1),
        group_id=group,
        topics=[topic],
        routes={heartbeat_pb2.Heartbeat: inbox.handler(apply)},
        dead_letters=DeadLetterPublisher(producer, metrics),
        metrics=metrics,
    )
    task = asyncio.create_task(consumer.run())

    def outcome(name: str) -> float:
        value = metrics.registry.get_sample_value(
            "shopstream_events_consumed_total",
            {"service": "test", "topic": topic, "group": group, "outcome": name},
        )
        return value or 0.0

    for _ in range(200):
        if outcome("processed") + outcome("duplicate") >= 2:
            break
        await asyncio.sleep(0.1)
    consumer.stop()
    await task
    producer.close()

    assert outcome("processed") == 1 and outcome("duplicate") == 1
    assert applied == [5]
    async with database.read() as session:
        assert (await session.execute(select(func.count()).select_from(effects))).scalar_one() == 1
