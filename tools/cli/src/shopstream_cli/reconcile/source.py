"""Reading the published topics once, from a start time (or the beginning) to their current end.

Every record is decoded by its `ce_type` (types a recount does not use are skipped undecoded)
and de-duplicated by `ce_id`: delivery is at least once, and an outbox may re-send a record
after a crash with the same id. The ends are the high watermarks taken before reading, so a
recount is of a fixed prefix of each partition even while the services keep publishing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka import Message as KafkaRecord
from google.protobuf import symbol_database
from google.protobuf.message import Message

from shopstream_platform.kafka.cloudevents import headers_dict
from shopstream_platform.kafka.codec import import_all_messages
from shopstream_platform.settings import KafkaSettings

METADATA_TIMEOUT_S = 10.0
BATCH = 5_000
# In a topic's types: decode every type of the topic, also ones added after this code was
# written (owners add event types without a version bump).
ANY_TYPE = "*"
# Reading stops when no record came for this long although some partition is not at its end
# (a transaction left open holds read_committed consumers before its records).
STALL_S = 30.0


@dataclass(frozen=True)
class Record:
    topic: str
    key: str
    ce_type: str
    ce_id: str
    timestamp_ms: int
    message: Message


@dataclass
class Topics:
    """The decoded records of each topic, in partition order (one key's records in sequence)."""

    records: dict[str, list[Record]] = field(default_factory=dict)
    read: int = 0
    duplicates: int = 0
    undecodable: int = 0
    missing: list[str] = field(default_factory=list)

    def of(self, topic: str) -> list[Record]:
        return self.records.get(topic, [])


Progress = Callable[[int, int], None]


def read_topics(
    kafka: KafkaSettings,
    types: Mapping[str, Mapping[str, type[Message]]],
    since: datetime | None,
    progress: Progress | None = None,
) -> Topics:
    """Every record of the topics in `types` (topic -> ce_type -> message class, or ANY_TYPE)
    from `since`."""
    if any(ANY_TYPE in known for known in types.values()):
        import_all_messages()
    consumer = Consumer(
        {
            **kafka.client_config(),
            # A throwaway group that never commits: a recount moves no service's offsets.
            "group.id": f"shopstream.cli-reconcile.{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
        }
    )
    result = Topics()
    try:
        starts, ends = _bounds(consumer, list(types), since, result)
        total = sum(max(0, ends[(tp.topic, tp.partition)] - tp.offset) for tp in starts)
        if progress:
            progress(0, total)
        pending = {(tp.topic, tp.partition) for tp in starts}
        if not pending:
            return result
        consumer.assign(starts)
        seen: dict[str, set[str]] = {t: set() for t in types}
        done = 0
        last = time.monotonic()
        while pending:
            batch = consumer.consume(BATCH, 0.5)
            if not batch:
                if time.monotonic() - last > STALL_S:
                    break
                continue
            last = time.monotonic()
            for record in batch:
                topic, partition = record.topic() or "", record.partition() or 0
                error = record.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        pending.discard((topic, partition))
                    continue
                offset = record.offset() or 0
                end = ends.get((topic, partition), 0)
                if offset + 1 >= end:
                    pending.discard((topic, partition))
                if offset >= end:
                    continue
                done += 1
                _take(record, types[topic], seen[topic], result)
            if progress:
                progress(done, total)
        result.read = done
        return result
    finally:
        consumer.close()


def _bounds(
    consumer: Consumer, topics: Iterable[str], since: datetime | None, result: Topics
) -> tuple[list[TopicPartition], dict[tuple[str, int], int]]:
    metadata = consumer.list_topics(timeout=METADATA_TIMEOUT_S)
    starts: list[TopicPartition] = []
    ends: dict[tuple[str, int], int] = {}
    for topic in topics:
        found = metadata.topics.get(topic)
        if found is None or found.error is not None:
            result.missing.append(topic)
            continue
        partitions = sorted(found.partitions)
        lows: dict[int, int] = {}
        for p in partitions:
            lows[p], ends[(topic, p)] = consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=METADATA_TIMEOUT_S
            )
        if since is None:
            starts.extend(
                TopicPartition(topic, p, lows[p]) for p in partitions if lows[p] < ends[(topic, p)]
            )
            continue
        ms = int(since.timestamp() * 1000)
        found_at = consumer.offsets_for_times(
            [TopicPartition(topic, p, ms) for p in partitions], timeout=METADATA_TIMEOUT_S
        )
        # -1: nothing at or after that time in the partition.
        starts.extend(tp for tp in found_at if 0 <= tp.offset < ends[(topic, tp.partition)])
    return starts, ends


def _take(
    record: KafkaRecord, known: Mapping[str, type[Message]], seen: set[str], result: Topics
) -> None:
    headers = headers_dict(record.headers())
    ce_type = headers.get("ce_type", "")
    cls = known.get(ce_type) or (_by_name(ce_type) if ANY_TYPE in known else None)
    if cls is None:
        return
    ce_id = headers.get("ce_id", "")
    if ce_id:
        if ce_id in seen:
            result.duplicates += 1
            return
        seen.add(ce_id)
    try:
        message = cls.FromString(record.value() or b"")
    except Exception:
        result.undecodable += 1
        return
    key = record.key()
    topic = record.topic() or ""
    result.records.setdefault(topic, []).append(
        Record(
            topic=topic,
            key=key.decode("utf-8", "replace") if key is not None else "",
            ce_type=ce_type,
            ce_id=ce_id,
            timestamp_ms=record.timestamp()[1],
            message=message,
        )
    )


def _by_name(ce_type: str) -> type[Message] | None:
    try:
        cls: type[Message] = symbol_database.Default().GetSymbol(ce_type)
    except KeyError:
        return None
    return cls
