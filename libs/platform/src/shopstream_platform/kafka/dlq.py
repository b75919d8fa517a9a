"""Dead-letter topics: a record we cannot process goes to `<topic>.dlq` with why and from where."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shopstream_platform.kafka.cloudevents import Headers, format_time
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.kafka.topics import DLQ_SUFFIX
from shopstream_platform.metrics import PlatformMetrics

if TYPE_CHECKING:
    from shopstream_platform.kafka.dispatch import RawRecord

log = logging.getLogger(__name__)

# Header names on a dead-lettered record; the original headers are kept beside them.
H_TOPIC = "dlq_original_topic"
H_PARTITION = "dlq_original_partition"
H_OFFSET = "dlq_original_offset"
H_GROUP = "dlq_consumer_group"
H_ERROR_TYPE = "dlq_error_type"
H_ERROR_MESSAGE = "dlq_error_message"
H_FAILED_AT = "dlq_failed_at"
DLQ_HEADERS = frozenset(
    {H_TOPIC, H_PARTITION, H_OFFSET, H_GROUP, H_ERROR_TYPE, H_ERROR_MESSAGE, H_FAILED_AT}
)

_MAX_ERROR_CHARS = 2_000


def dlq_topic(topic: str) -> str:
    return topic + DLQ_SUFFIX


def original_topic(dlq: str) -> str:
    if not dlq.endswith(DLQ_SUFFIX):
        raise ValueError(f"{dlq!r} is not a dead-letter topic")
    return dlq[: -len(DLQ_SUFFIX)]


def dead_letter_headers(
    original: Sequence[tuple[str, Any]] | Mapping[str, Any] | None,
    *,
    topic: str,
    partition: int,
    offset: int,
    group: str,
    error: BaseException,
) -> Headers:
    pairs = list(original.items()) if isinstance(original, Mapping) else list(original or [])
    kept: Headers = [(k, v) for k, v in pairs if k not in DLQ_HEADERS and v is not None]
    return [
        *kept,
        (H_TOPIC, topic.encode()),
        (H_PARTITION, str(partition).encode()),
        (H_OFFSET, str(offset).encode()),
        (H_GROUP, group.encode()),
        (H_ERROR_TYPE, type(error).__name__.encode()),
        (H_ERROR_MESSAGE, str(error)[:_MAX_ERROR_CHARS].encode()),
        (H_FAILED_AT, format_time(datetime.now(UTC)).encode()),
    ]


class DeadLetterPublisher:
    """Writes a failed record to its DLQ and waits for the ack, so it is never lost in between."""

    def __init__(self, producer: EventProducer, metrics: PlatformMetrics | None = None) -> None:
        self._producer = producer
        self._metrics = metrics

    async def send(self, record: RawRecord, group: str, error: BaseException) -> None:
        headers = dead_letter_headers(
            record.headers,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            group=group,
            error=error,
        )
        await self._producer.produce_raw_and_wait(
            dlq_topic(record.topic), record.key, record.value, headers
        )
        if self._metrics is not None:
            self._metrics.dlq_records.labels(
                self._metrics.service, record.topic, type(error).__name__
            ).inc()
        log.warning(
            "record dead-lettered",
            extra={
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "group": group,
                "error_type": type(error).__name__,
                "error": str(error)[:200],
            },
        )
