"""`shopstream topics tail`: records of a topic decoded from protobuf, as kcat users expect them —
chosen by partition, offset or time, filtered by key, event type or a pattern, counted, followed.

Offsets: `earliest`, `latest`, `N` (that offset in every chosen partition) or `-N`: the last N
records that pass the filters, over the chosen partitions and in record-time order (the search
reads backwards from each partition's end in growing windows until it has N, so a rare type is
found without reading the whole topic). Without --follow the tail stops at the partitions' end;
with no --offset or --since it starts at the end and follows, as `tail -f` does.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    Message,
    TopicPartition,
)
from google.protobuf import json_format, symbol_database
from rich.markup import escape

from shopstream_cli.broker import CliError, require_topic
from shopstream_cli.output import console, emit_json_line
from shopstream_platform.kafka.cloudevents import headers_dict
from shopstream_platform.kafka.codec import import_all_messages
from shopstream_platform.settings import KafkaSettings

# Records read per partition in the first backward window of `-N`; doubled while too few match.
_FIRST_WINDOW = 200
_POLL_S = 0.5


@dataclass(frozen=True)
class StartAt:
    """Where reading starts: `kind` is earliest, latest, offset, last or time."""

    kind: str
    value: int = 0

    @staticmethod
    def parse(text: str) -> StartAt:
        text = text.strip().lower()
        if text in ("earliest", "beginning", "start"):
            return StartAt("earliest")
        if text in ("latest", "end"):
            return StartAt("latest")
        try:
            number = int(text)
        except ValueError:
            raise ValueError(f"--offset must be earliest, latest, N or -N, not {text!r}") from None
        return StartAt("last", -number) if number < 0 else StartAt("offset", number)


_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`15m`, `2h`, `30s`, `1d` ago, or an ISO-8601 time (UTC when it names no zone)."""
    now = now or datetime.now(UTC)
    match = _RELATIVE.match(text.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"--since must be a duration (30s, 15m, 2h, 1d) or an ISO time, not {text!r}"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Filters:
    key: str | None = None
    ce_type: str | None = None
    pattern: re.Pattern[str] | None = None

    def matches(self, entry: dict[str, Any]) -> bool:
        if self.key is not None and entry["key"] != self.key:
            return False
        if self.ce_type is not None:
            actual = entry["ce_type"] or ""
            # The full name, or its short form: OrderPlaced for shopstream.commerce.v1.OrderPlaced.
            if actual != self.ce_type and not actual.endswith("." + self.ce_type):
                return False
        if self.pattern is not None:
            text = json.dumps(entry, default=str, ensure_ascii=False)
            if not self.pattern.search(text):
                return False
        return True


@dataclass
class TailRequest:
    topic: str
    partitions: list[int] | None = None
    start: StartAt | None = None
    since: datetime | None = None
    filters: Filters = field(default_factory=Filters)
    count: int | None = None
    follow: bool | None = None
    idle_exit_s: float | None = None


def decode(ce_type: str | None, value: bytes | None) -> dict[str, object] | str:
    """The record as a dict when its ce_type is a known message, else a short hex preview."""
    if ce_type:
        try:
            cls = symbol_database.Default().GetSymbol(ce_type)
            message = cls.FromString(value or b"")
            return dict(json_format.MessageToDict(message, preserving_proto_field_name=True))
        except Exception:
            pass
    raw = value or b""
    return f"<{len(raw)} bytes: {raw[:32].hex()}{'…' if len(raw) > 32 else ''}>"


def entry_of(record: Message) -> dict[str, Any]:
    headers = headers_dict(record.headers())
    key = record.key()
    _, timestamp_ms = record.timestamp()
    return {
        "partition": record.partition(),
        "offset": record.offset(),
        "timestamp_ms": timestamp_ms,
        "key": key.decode("utf-8", "replace") if key is not None else None,
        "ce_type": headers.get("ce_type"),
        "ce_id": headers.get("ce_id"),
        "ce_source": headers.get("ce_source"),
        "ce_time": headers.get("ce_time"),
        "value": decode(headers.get("ce_type"), record.value()),
    }


def _consumer(kafka: KafkaSettings) -> Consumer:
    return Consumer(
        {
            **kafka.client_config(),
            # A throwaway group that never commits: tailing moves no service's offsets.
            "group.id": f"shopstream.cli-tail.{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }
    )


def _read(consumer: Consumer, ends: dict[int, int], idle_exit_s: float | None) -> Iterator[Message]:
    """Records of the assigned partitions until each reached its end (partition EOF or `ends`)."""
    pending = {p for p, end in ends.items() if end > 0}
    last = time.monotonic()
    while pending:
        record = consumer.poll(_POLL_S)
        if record is None:
            if idle_exit_s is not None and time.monotonic() - last > idle_exit_s:
                return
            continue
        error = record.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                pending.discard(record.partition())
            continue
        last = time.monotonic()
        partition = record.partition()
        if partition not in pending:
            continue
        offset = record.offset()
        if offset is not None and offset + 1 >= ends[partition]:
            pending.discard(partition)
        if offset is not None and offset < ends[partition]:
            yield record


def _follow(consumer: Consumer, idle_exit_s: float | None) -> Iterator[Message]:
    last = time.monotonic()
    while True:
        record = consumer.poll(_POLL_S)
        if record is None or record.error() is not None:
            if idle_exit_s is not None and time.monotonic() - last > idle_exit_s:
                return
            continue
        last = time.monotonic()
        yield record


def _last_matching(
    consumer: Consumer, topic: str, bounds: dict[int, tuple[int, int]], n: int, filters: Filters
) -> list[dict[str, Any]]:
    """The last `n` records passing `filters` over the partitions, oldest first."""
    found: list[dict[str, Any]] = []
    for partition, (low, high) in bounds.items():
        window = max(_FIRST_WINDOW, n)
        matches: list[dict[str, Any]] = []
        end = high
        while end > low and len(matches) < n:
            start = max(low, end - window)
            consumer.assign([TopicPartition(topic, partition, start)])
            chunk = [
                e
                for e in map(entry_of, _read(consumer, {partition: end}, None))
                if e["offset"] >= start
            ]
            matches = [e for e in chunk if filters.matches(e)] + matches
            end, window = start, window * 2
        found.extend(matches[-n:])
    found.sort(key=lambda e: (e["timestamp_ms"], e["partition"], e["offset"]))
    return found[-n:]


def _starts(
    consumer: Consumer, request: TailRequest, bounds: dict[int, tuple[int, int]]
) -> list[TopicPartition]:
    topic = request.topic
    if request.since is not None:
        ms = int(request.since.timestamp() * 1000)
        found = consumer.offsets_for_times(
            [TopicPartition(topic, p, ms) for p in bounds], timeout=10
        )
        # -1: no record at or after that time, so start at the end.
        return [
            TopicPartition(
                topic, tp.partition, tp.offset if tp.offset >= 0 else bounds[tp.partition][1]
            )
            for tp in found
        ]
    start = request.start or StartAt("latest")
    if start.kind == "earliest":
        return [TopicPartition(topic, p, OFFSET_BEGINNING) for p in bounds]
    if start.kind == "latest":
        return [TopicPartition(topic, p, OFFSET_END) for p in bounds]
    # An offset below a partition's first retained record starts at that record.
    return [TopicPartition(topic, p, max(start.value, low)) for p, (low, _) in bounds.items()]


def tail(kafka: KafkaSettings, request: TailRequest, *, as_json: bool) -> int:
    import_all_messages()
    consumer = _consumer(kafka)
    try:
        return _tail(consumer, kafka, request, as_json=as_json)
    except KeyboardInterrupt:
        return 0
    finally:
        consumer.close()


def _tail(consumer: Consumer, kafka: KafkaSettings, request: TailRequest, *, as_json: bool) -> int:
    topic = request.topic
    existing = require_topic(consumer, kafka, topic)
    partitions = request.partitions if request.partitions is not None else existing
    unknown = sorted(set(partitions) - set(existing))
    if unknown:
        raise CliError(f"{topic} has partitions 0..{len(existing) - 1}, not {unknown}")
    bounds = {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions
    }
    explicit = request.start is not None or request.since is not None
    follow = request.follow if request.follow is not None else not explicit
    if not as_json:
        console.print(
            f"[dim]{topic} p{','.join(map(str, partitions))}"
            f"{' (following; Ctrl-C to stop)' if follow else ''}[/]"
        )
    printed = 0

    def emit(entries: Iterable[dict[str, Any]]) -> bool:
        """Print what passes the filters; False once --count is reached."""
        nonlocal printed
        if request.count is not None and printed >= request.count:
            return False
        for entry in entries:
            if not request.filters.matches(entry):
                continue
            _print(entry, as_json=as_json)
            printed += 1
            # Stop at once: waiting for one more record to notice would hang a follow.
            if request.count is not None and printed >= request.count:
                return False
        return True

    if request.start is not None and request.start.kind == "last":
        last = _last_matching(consumer, topic, bounds, request.start.value, request.filters)
        if not emit(last) or not follow:
            return 0
        consumer.assign([TopicPartition(topic, p, high) for p, (_, high) in bounds.items()])
    else:
        consumer.assign(_starts(consumer, request, bounds))
        if not follow:
            ends = {p: high for p, (_, high) in bounds.items()}
            emit(map(entry_of, _read(consumer, ends, request.idle_exit_s)))
            return 0
    emit(map(entry_of, _follow(consumer, request.idle_exit_s)))
    return 0


def _print(entry: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        emit_json_line(entry)
        return
    console.print(
        f"[cyan]{entry['ce_time']}[/] [bold]{escape(str(entry['ce_type']))}[/] "
        f"key={escape(str(entry['key']))} p{entry['partition']}@{entry['offset']}"
    )
    if isinstance(entry["value"], dict):
        console.print_json(data=entry["value"])
    else:
        console.print(escape(str(entry["value"])))
