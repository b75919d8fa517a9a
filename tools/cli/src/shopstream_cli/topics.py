"""`shopstream topics list|tail`: the registry, and live records decoded from protobuf."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, KafkaException
from google.protobuf import json_format, symbol_database
from rich.markup import escape

from shopstream_cli.output import console, emit_json_line, emit_table, fail
from shopstream_platform.kafka.cloudevents import headers_dict
from shopstream_platform.kafka.codec import import_all_messages
from shopstream_platform.kafka.topics import load_registry
from shopstream_platform.settings import KafkaSettings


def list_topics(*, as_json: bool) -> int:
    rows = [
        (t.name, t.key, ", ".join(t.values), t.partitions, t.retention_ms, t.owner)
        for t in load_registry()
    ]
    emit_table(
        "Topics (protos/topics.yaml; each also has a .dlq twin)",
        ["topic", "key", "values", "partitions", "retention_ms", "owner"],
        rows,
        as_json=as_json,
    )
    return 0


def decode(ce_type: str | None, value: bytes | None) -> dict[str, object] | str:
    """The record as a dict when its ce_type is a known message, else a short hex preview."""
    if ce_type:
        try:
            cls = symbol_database.Default().GetSymbol(ce_type)
            message = cls.FromString(value or b"")
            return json_format.MessageToDict(message, preserving_proto_field_name=True)
        except Exception:
            pass
    raw = value or b""
    return f"<{len(raw)} bytes: {raw[:32].hex()}{'…' if len(raw) > 32 else ''}>"


def tail(
    kafka: KafkaSettings,
    topic: str,
    *,
    from_beginning: bool,
    max_records: int | None,
    idle_exit_s: float | None,
    as_json: bool,
) -> int:
    import_all_messages()
    consumer = Consumer(
        {
            **kafka.client_config(),
            # A throwaway group: tailing never moves any service's offsets.
            "group.id": f"shopstream.cli-tail.{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            "enable.auto.commit": False,
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
    except KafkaException as exc:
        consumer.close()
        return fail(f"cannot reach Kafka at {kafka.bootstrap_servers}: {exc}")
    if topic not in metadata.topics or metadata.topics[topic].error is not None:
        consumer.close()
        return fail(f"topic {topic!r} does not exist (see `shopstream topics list`)")
    consumer.subscribe([topic])
    seen = 0
    last = time.monotonic()
    if not as_json:
        console.print(f"[dim]tailing {topic} (Ctrl-C to stop)[/]")
    try:
        while max_records is None or seen < max_records:
            record = consumer.poll(0.5)
            if record is None or record.error() is not None:
                if idle_exit_s is not None and time.monotonic() - last > idle_exit_s:
                    break
                continue
            last = time.monotonic()
            seen += 1
            headers = headers_dict(record.headers())
            key = record.key()
            entry = {
                "partition": record.partition(),
                "offset": record.offset(),
                "key": key.decode("utf-8", "replace") if key is not None else None,
                "ce_type": headers.get("ce_type"),
                "ce_id": headers.get("ce_id"),
                "ce_source": headers.get("ce_source"),
                "ce_time": headers.get("ce_time"),
                "value": decode(headers.get("ce_type"), record.value()),
            }
            if as_json:
                emit_json_line(entry)
            else:
                console.print(
                    f"[cyan]{entry['ce_time']}[/] [bold]{escape(str(entry['ce_type']))}[/] "
                    f"key={escape(str(entry['key']))} p{entry['partition']}@{entry['offset']}"
                )
                console.print_json(data=entry["value"]) if isinstance(
                    entry["value"], dict
                ) else console.print(escape(str(entry["value"])))
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return 0
