"""A combiner window that cannot commit is read again from where reading started, through a real
broker: for a partition the group has committed nothing on yet, that is the offset it adopted
from the group that read the sources before it, not the start of the log (a shared topic's whole
history, read again)."""

import threading
import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client import CollectorRegistry

from shopstream_platform.combiner import Combiner, CombinerMetrics, SourceEvent
from shopstream_platform.settings import CombinerSettings, KafkaSettings
from shopstream_platform.testing import commit_group_offsets

pytestmark = pytest.mark.integration

RECORDS = 100
ADOPTED = 60


class FailOnce:
    """A reducer whose first window names a partition the output does not have: producing it
    fails (a non-fatal error), so the window is aborted and read again."""

    def __init__(self) -> None:
        self._window: list[int] = []
        self.read: list[int] = []
        self.failed = False
        self.committed_windows = 0

    @property
    def pending(self) -> int:
        return len(self._window)

    def add(self, topic: str, key: bytes | None, value: bytes, event: SourceEvent) -> bool:
        self._window.append(int(value))
        self.read.append(int(value))
        return True

    def take(self, watermark: float) -> list[tuple[int, bytes]]:
        window, self._window = self._window, []
        if window and not self.failed:
            self.failed = True
            return [(7, b"no such partition")]
        if window:
            self.committed_windows += 1
        return []


async def test_an_aborted_window_is_read_again_from_the_adopted_offset(
    kafka_settings: KafkaSettings, new_topic: Callable[..., str]
) -> None:
    source, output = new_topic("adopted"), new_topic("out")
    producer = Producer({"bootstrap.servers": kafka_settings.bootstrap_servers})
    headers = [("ce_specversion", b"1.0"), ("ce_id", b"x"), ("ce_type", b"test.v1.Tick")]
    headers += [("ce_source", b"t"), ("ce_time", b"")]
    for i in range(RECORDS):
        producer.produce(source, str(i).encode(), headers=headers)
    assert producer.flush(30) == 0
    # The group that read the source before the combiner got as far as ADOPTED.
    before = f"before-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_settings.bootstrap_servers})
    commit_group_offsets(admin, {before: [TopicPartition(source, 0, ADOPTED)]})
    reducer = FailOnce()
    combiner = Combiner(
        kafka=kafka_settings,
        settings=CombinerSettings(min_window_s=0.05, max_window_s=0.1),
        service="test",
        group_id=f"recover-{uuid.uuid4().hex[:8]}",
        sources=[source],
        output=output,
        output_type="test.v1.Batch",
        reducer=reducer,
        metrics=CombinerMetrics(CollectorRegistry(), "test"),
        adopt_offsets_from=before,
    )
    thread = threading.Thread(target=combiner.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not reducer.committed_windows and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        combiner.stop()
        thread.join(30)
    assert reducer.failed and reducer.committed_windows, reducer.read
    # Read from the adopted offset, the aborted window once more from there, nothing before it.
    assert min(reducer.read) == ADOPTED, reducer.read
    assert sorted(set(reducer.read)) == list(range(ADOPTED, RECORDS)), reducer.read
    assert reducer.read.count(ADOPTED) == 2, reducer.read
