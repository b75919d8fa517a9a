"""The combiner's event time, through a real broker: while it reads a backlog, each window's
watermark is the backlog's time (no record read after a window is older than its watermark), and
once every partition is read to its end it is the wall clock, an empty partition included."""

import threading
import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Producer
from prometheus_client import CollectorRegistry

from shopstream_platform.combiner import Combiner, CombinerMetrics, SourceEvent
from shopstream_platform.settings import CombinerSettings, KafkaSettings

pytestmark = pytest.mark.integration

RECORDS = 6_000
STEP_MS = 10


class Recorder:
    """A `WindowReducer` that keeps, per window, the timestamps of its records and its watermark."""

    def __init__(self) -> None:
        self._window: list[float] = []
        self.windows: list[tuple[float, list[float]]] = []

    @property
    def pending(self) -> int:
        return len(self._window)

    def add(self, topic: str, key: bytes | None, value: bytes, event: SourceEvent) -> bool:
        self._window.append(event.timestamp)
        return True

    def take(self, watermark: float) -> list[tuple[int, bytes]]:
        self.windows.append((watermark, self._window))
        self._window = []
        return []


async def test_the_watermark_follows_the_backlog_then_the_wall_clock(
    kafka_settings: KafkaSettings, new_topic: Callable[..., str]
) -> None:
    busy, empty, output = new_topic("backlog", partitions=2), new_topic("idle"), new_topic("out")
    # A backlog an hour old: one record per 20 ms per partition, each partition in time order.
    base_ms = int(time.time() * 1000) - 3_600_000
    producer = Producer({"bootstrap.servers": kafka_settings.bootstrap_servers})
    for i in range(RECORDS):
        headers = [("ce_specversion", b"1.0"), ("ce_id", uuid.uuid4().hex.encode())]
        headers += [("ce_type", b"test.v1.Tick"), ("ce_source", b"t"), ("ce_time", b"")]
        producer.produce(
            busy, b"x", partition=i % 2, timestamp=base_ms + i * STEP_MS, headers=headers
        )
    assert producer.flush(30) == 0
    recorder = Recorder()
    started = time.time()
    combiner = Combiner(
        kafka=kafka_settings,
        # Small reads, short windows: the backlog takes many windows.
        settings=CombinerSettings(min_window_s=0.01, max_window_s=0.02, max_batch=20),
        service="test",
        group_id=f"event-time-{uuid.uuid4().hex[:8]}",
        sources=[busy, empty],
        output=output,
        output_type="test.v1.Batch",
        reducer=recorder,
        metrics=CombinerMetrics(CollectorRegistry(), "test"),
    )
    thread = threading.Thread(target=combiner.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while combiner.watermark < started and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        combiner.stop()
        thread.join(30)
    windows = [(w, ts) for w, ts in recorder.windows]
    gathered = [t for _, ts in windows for t in ts]
    assert len(gathered) == RECORDS
    # Caught up: the wall clock, although one source never had a record.
    assert combiner.watermark >= started
    # Behind: the backlog's own time (librdkafka serves one partition's backlog, then the
    # other's: the windows while the second is read are at its time).
    behind = [w for w, ts in windows if ts and 0 < w < started - 60]
    assert behind, [w - started for w, _ in windows]
    # Never ahead of the records still to come, never back.
    for k, (watermark, _) in enumerate(windows):
        later = [t for _, ts in windows[k + 1 :] for t in ts]
        assert not later or min(later) >= watermark - 1e-3, (k, watermark, min(later))
    marks = [w for w, _ in windows]
    assert marks == sorted(marks)
