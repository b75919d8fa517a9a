"""`shopstream dlq list|redrive`: what was dead-lettered and why, and sending it back."""

from __future__ import annotations

from shopstream_cli.broker import CliError, require_topic
from shopstream_cli.output import console, emit_table, note
from shopstream_platform.kafka.admin import admin_client
from shopstream_platform.kafka.dlq import dlq_topic
from shopstream_platform.kafka.redrive import read_dead_letters, redrive
from shopstream_platform.settings import KafkaSettings


def _require_dlq(kafka: KafkaSettings, topic: str) -> str:
    """`<topic>.dlq`, after checking that Kafka answers and that the topic exists."""
    if topic.endswith(".dlq"):
        raise CliError(f"name the original topic, without .dlq: {topic.removesuffix('.dlq')}")
    dlq = dlq_topic(topic)
    require_topic(admin_client(kafka), kafka, dlq)
    return dlq


def list_dead_letters(kafka: KafkaSettings, topic: str, *, limit: int, as_json: bool) -> int:
    dlq = _require_dlq(kafka, topic)
    consumer, found = read_dead_letters(kafka, topic, limit=limit)
    consumer.close()
    rows = [
        (
            d.headers.get("dlq_original_partition"),
            d.headers.get("dlq_original_offset"),
            d.key,
            d.headers.get("ce_type", "-"),
            d.headers.get("dlq_consumer_group"),
            d.headers.get("dlq_error_type"),
            d.headers.get("dlq_error_message", "")[:120],
            d.headers.get("dlq_failed_at"),
        )
        for _, d in found
    ]
    if not rows and not as_json:
        note(f"no dead letters in {dlq}")
        return 0
    emit_table(
        f"Dead letters of {topic} ({len(rows)} shown)",
        ["partition", "offset", "key", "ce_type", "group", "error", "message", "failed_at"],
        rows,
        as_json=as_json,
    )
    return 0


def redrive_dead_letters(kafka: KafkaSettings, topic: str, *, limit: int, dry_run: bool) -> int:
    _require_dlq(kafka, topic)
    require_topic(admin_client(kafka), kafka, topic)
    with console.status(f"re-driving dead letters of {topic} …"):
        sent = redrive(kafka, topic, limit=limit, dry_run=dry_run)
    verb = "would re-drive" if dry_run else "re-drove"
    console.print(f"{verb} {len(sent)} record(s) to {topic}")
    return 0
