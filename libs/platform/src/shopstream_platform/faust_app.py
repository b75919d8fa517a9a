"""The Faust app factory: stream workers wired to the same settings and safety rules as services.

Settings Faust would otherwise default are stated: replication factor (Faust's default is 1),
acks=all, at-least-once processing (exactly_once has open duplicate/fencing reports under kill -9,
so effects are made idempotent instead), RocksDB tables with changelog topics for recovery, or
memory tables in unit tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import faust

from shopstream_platform.kafka.dispatch import Dispatcher, RawRecord
from shopstream_platform.metrics import PlatformMetrics
from shopstream_platform.settings import KafkaSettings

StoreKind = Literal["rocksdb", "memory"]


def make_faust_app(
    app_id: str,
    kafka: KafkaSettings,
    *,
    store: StoreKind = "rocksdb",
    data_dir: Path = Path(".run/faust"),
    partitions: int = 6,
    web_port: int | None = None,
) -> faust.App:
    brokers = [f"kafka://{b.strip()}" for b in kafka.bootstrap_servers.split(",") if b.strip()]
    # Faust creates only the last level of its data directory.
    data_dir.mkdir(parents=True, exist_ok=True)
    return faust.App(
        app_id,
        broker=brokers,
        store="rocksdb://" if store == "rocksdb" else "memory://",
        datadir=str(data_dir / app_id),
        topic_replication_factor=kafka.replication_factor,
        topic_partitions=partitions,
        producer_acks=-1,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        # Our services log structured JSON themselves; keep Faust's own web server optional.
        web_enabled=web_port is not None,
        web_port=web_port or 6066,
        web_host="127.0.0.1",
        topic_allow_declare=True,
        # A worker killed without leaving the group holds its partitions until its session times
        # out; Faust's default (60 s) would stall a restart that long.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
    )


def protobuf_agent(
    app: faust.App,
    topic: str,
    dispatcher: Dispatcher,
    metrics: PlatformMetrics,
    *,
    name: str | None = None,
) -> Any:
    """A Faust agent over a registry topic, with the platform's decoding, retries and DLQ.

    Values are read as raw bytes (Faust's own codecs would swallow decode errors): the
    dispatcher decodes protobuf by ce_type and dead-letters what it cannot process, waiting for
    the DLQ's ack, before the agent moves on and Faust acknowledges the offset.
    """
    channel = app.topic(topic, key_serializer="raw", value_serializer="raw")

    async def process(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            outcome = await dispatcher.dispatch(
                RawRecord(
                    topic=message.topic,
                    partition=message.partition,
                    offset=message.offset,
                    key=message.key,
                    value=message.value,
                    headers=message.headers,
                )
            )
            metrics.events_consumed.labels(
                metrics.service, topic, dispatcher.group_id, outcome.value
            ).inc()

    process.__name__ = name or f"agent_{topic.replace('.', '_').replace('-', '_')}"
    return app.agent(channel, name=process.__name__)(process)
