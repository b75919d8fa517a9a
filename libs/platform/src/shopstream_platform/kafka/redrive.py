"""Re-drive a dead-letter topic: send its records back to the topic they came from.

Records keep their key, value and original headers (the ce_id among them), so consumers that
already applied one deduplicate it; the dlq_* headers are dropped. The redrive group commits as
it goes, so a second run only sees records dead-lettered since.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import Consumer, Message, TopicPartition

from shopstream_platform.kafka.cloudevents import headers_dict
from shopstream_platform.kafka.dlq import DLQ_HEADERS, H_TOPIC, dlq_topic
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.settings import KafkaSettings

REDRIVE_GROUP = "shopstream.dlq-redrive"


@dataclass(frozen=True)
class DeadLetter:
    """One dead-lettered record as operators want to see it."""

    partition: int
    offset: int
    key: str | None
    headers: dict[str, str]
    value: bytes

    @property
    def error(self) -> str:
        return f"{self.headers.get('dlq_error_type', '?')}: {self.headers.get('dlq_error_message', '')}"


def _as_dead_letter(record: Message) -> DeadLetter:
    key = record.key()
    return DeadLetter(
        partition=record.partition() or 0,
        offset=record.offset() or 0,
        key=key.decode("utf-8", "replace") if key is not None else None,
        headers=headers_dict(record.headers()),
        value=record.value() or b"",
    )


def read_dead_letters(
    kafka: KafkaSettings,
    topic: str,
    *,
    limit: int = 100,
    group: str | None = None,
    idle_s: float = 2.0,
) -> tuple[Consumer, list[tuple[Message, DeadLetter]]]:
    """Read up to `limit` records of `<topic>.dlq`; with no group, from the beginning, uncommitted."""
    consumer = Consumer(
        {
            **kafka.client_config(),
            "group.id": group or f"shopstream.dlq-reader.{time.time_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([dlq_topic(topic)])
    found: list[tuple[Message, DeadLetter]] = []
    last_seen = time.monotonic()
    while len(found) < limit and time.monotonic() - last_seen < idle_s:
        record = consumer.poll(0.2)
        if record is None or record.error() is not None:
            continue
        found.append((record, _as_dead_letter(record)))
        last_seen = time.monotonic()
    return consumer, found


def redrive(
    kafka: KafkaSettings,
    topic: str,
    *,
    limit: int = 1_000,
    dry_run: bool = False,
    progress: Callable[[DeadLetter], None] | None = None,
) -> list[DeadLetter]:
    """Send up to `limit` dead letters of `topic` back to it; returns those sent (or to be sent)."""
    consumer, found = read_dead_letters(kafka, topic, limit=limit, group=REDRIVE_GROUP)
    try:
        if dry_run or not found:
            return [d for _, d in found]
        producer = EventProducer(kafka, "shopstream/dlq-redrive")
        failures: list[str] = []
        for _record, letter in found:
            target = letter.headers.get(H_TOPIC, topic)
            headers = [(k, v.encode()) for k, v in letter.headers.items() if k not in DLQ_HEADERS]
            key = letter.key.encode() if letter.key is not None else None

            def delivered(err: object, _msg: object) -> None:
                if err is not None:
                    failures.append(str(err))

            producer.produce_raw(target, key, letter.value, list(headers), delivered)
            if progress is not None:
                progress(letter)
        remaining = producer.close()
        if failures or remaining:
            raise RuntimeError(f"re-drive incomplete: {failures[:3]} ({remaining} undelivered)")
        # Only after every record is back on its topic do we move the redrive group past them.
        next_offsets: dict[int, int] = {}
        for _record, letter in found:
            next_offsets[letter.partition] = max(
                next_offsets.get(letter.partition, 0), letter.offset + 1
            )
        consumer.commit(
            offsets=[TopicPartition(dlq_topic(topic), p, o) for p, o in next_offsets.items()],
            asynchronous=False,
        )
        return [d for _, d in found]
    finally:
        consumer.close()
