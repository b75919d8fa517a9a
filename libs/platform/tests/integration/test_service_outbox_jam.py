"""A running service process whose outbox holds a row Kafka can never accept (issue 15, 2.7).

Before the fix the relay stopped at that row for ever, re-sent every later row about once a
second, and SIGTERM could not drain. Now the row is dead-lettered, every other row is published
exactly once, the metric shows it, and SIGTERM exits 0.
"""

import asyncio
import base64
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from shopstream.platform.v1 import heartbeat_pb2
from shopstream_platform.db.database import Database
from shopstream_platform.db.migrations import migrate
from shopstream_platform.db.outbox import Outbox
from shopstream_platform.db.tables import PLATFORM_MIGRATIONS, outbox_dead_letters
from shopstream_platform.db.tables import outbox as outbox_table
from shopstream_platform.kafka.cloudevents import headers_dict
from shopstream_platform.settings import KafkaSettings
from shopstream_platform.testing import free_port, read_all_async

pytestmark = pytest.mark.integration


def metrics_text(port: int) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()


async def test_a_row_kafka_never_accepts_does_not_stop_a_running_service(
    kafka_settings: KafkaSettings, new_topic: Callable[..., str], tmp_path: Path
) -> None:
    topic = new_topic("jam")
    url = f"sqlite+aiosqlite:///{tmp_path}/sample.db"
    db = Database(url)
    await migrate(db, "platform", PLATFORM_MIGRATIONS)
    # Rows as an older writer (no size guard) left them: one of 1.6 MB between small ones.
    writer = Outbox(source="shopstream/old-writer", max_event_bytes=100_000_000)
    huge = base64.b64encode(os.urandom(1_200_000)).decode()
    async with db.transaction() as session:
        metas = [
            await writer.add(session, topic, "k", heartbeat_pb2.Heartbeat(sequence=1)),
            await writer.add(
                session, topic, "k", heartbeat_pb2.Heartbeat(sequence=2, instance_id=huge)
            ),
            await writer.add(session, topic, "k", heartbeat_pb2.Heartbeat(sequence=3)),
            await writer.add(session, topic, "k", heartbeat_pb2.Heartbeat(sequence=4)),
        ]
    await db.dispose()

    grpc_port, metrics_port = free_port(), free_port()
    env = {
        **os.environ,
        "SHOPSTREAM_SAMPLE_KAFKA__BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "SHOPSTREAM_SAMPLE_GRPC__PORT": str(grpc_port),
        "SHOPSTREAM_SAMPLE_METRICS_PORT": str(metrics_port),
        "SHOPSTREAM_SAMPLE_DATABASE_URL": url,
        "SHOPSTREAM_SAMPLE_LOG_FORMAT": "text",
    }
    service = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("sample_service.py"))],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        records = await read_all_async(kafka_settings, topic, expect=3, timeout_s=60)
        assert len(records) == 3
        # Let the relay run on: before the fix it re-sent rows 3 and 4 about once a second.
        await asyncio.sleep(4)
        records = await read_all_async(kafka_settings, topic, expect=10, timeout_s=5)
        ids = [headers_dict(r.headers())["ce_id"] for r in records]
        assert ids == [metas[0].id, metas[2].id, metas[3].id]
        metrics = metrics_text(metrics_port)
        assert (
            f'shopstream_outbox_dead_lettered_total{{reason="too_large",service="sample",'
            f'topic="{topic}"}} 1.0' in metrics
        ), metrics
        assert 'shopstream_outbox_pending_records{service="sample"} 0.0' in metrics
        started = time.monotonic()
        service.send_signal(signal.SIGTERM)
        assert service.wait(40) == 0
        assert time.monotonic() - started < 30
    finally:
        if service.poll() is None:
            service.kill()
        stderr = service.stderr.read() if service.stderr else ""
    assert "outbox row dead-lettered" in stderr, stderr[-3000:]

    db = Database(url)
    async with db.read() as session:
        pending = (await session.execute(select(func.count()).select_from(outbox_table))).scalar()
        [dead] = (await session.execute(select(outbox_dead_letters))).all()
    await db.dispose()
    assert pending == 0
    assert dead.ce_id == metas[1].id and "exceeds" in dead.reason
