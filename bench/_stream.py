"""What the stream-worker benches share: a raw producer, the floors measured in the same run, and
the process facts (CPU, memory) of the worker, its combiner and the broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from _broker import bench_broker_pid
from _common import REPO, proc_cpu_seconds
from confluent_kafka import Consumer, Producer, TopicPartition

from shopstream_platform.kafka.cloudevents import format_time
from shopstream_platform.kafka.producer import producer_config
from shopstream_platform.settings import KafkaSettings

SOURCE = "shopstream/bench"


class RawProducer:
    """Records produced raw (prebuilt headers, one random id per record): the producer must not
    be what a bench measures."""

    def __init__(self, kafka: KafkaSettings, client_id: str) -> None:
        self.producer = Producer(producer_config(kafka, client_id))

    def produce(self, topic: str, key: str, value: bytes, ce_type: str, now: datetime) -> None:
        headers = [
            ("ce_specversion", "1.0"),
            ("ce_id", os.urandom(16).hex()),
            ("ce_type", ce_type),
            ("ce_source", SOURCE),
            ("ce_time", format_time(now)),
            ("content-type", "application/protobuf"),
        ]
        while True:
            try:
                self.producer.produce(topic, value, key, headers=headers)
                return
            except BufferError:
                self.producer.poll(0.05)

    def flush(self) -> None:
        while self.producer.flush(30):
            pass


def client_floor(
    kafka: KafkaSettings,
    group: str,
    topics: Sequence[str],
    decoders: dict[str, Callable[[bytes], Any]],
    expect: int,
    timeout_s: float,
) -> dict[str, Any]:
    """Bare confluent-kafka: consume in batches, scan headers, decode each value (what any
    consumer must do at least). Records not from the bench's producer are counted apart."""
    consumer = Consumer(
        {
            **kafka.client_config(),
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.max.bytes": 52_428_800,
        }
    )
    consumer.subscribe(list(topics))
    cpu0 = proc_cpu_seconds(os.getpid())
    n, foreign, first, deadline = 0, 0, None, time.monotonic() + timeout_s
    while n < expect and time.monotonic() < deadline:
        for msg in consumer.consume(num_messages=10_000, timeout=0.5):
            if msg.error():
                continue
            if first is None:
                first = time.perf_counter()
            ce_type = ce_source = ""
            for name, value in msg.headers() or ():
                if name == "ce_type":
                    ce_type = value.decode()
                elif name == "ce_source":
                    ce_source = value.decode()
            if ce_source != SOURCE:
                foreign += 1  # another producer on the shared topics: the run is not clean
                continue
            decoders[ce_type](msg.value())
            n += 1
    seconds = time.perf_counter() - (first or time.perf_counter())
    cpu = proc_cpu_seconds(os.getpid()) - cpu0
    consumer.close()
    return {
        "events": n,
        "foreign_records": foreign,
        "seconds": round(seconds, 3),
        "events_per_s": round(n / seconds) if seconds > 0 else 0,
        "us_per_event_cpu": round(cpu / max(n, 1) * 1e6, 1),
    }


def faust_floor(
    bootstrap: str, group: str, topics: Sequence[str], expect: int, timeout_s: float
) -> dict[str, Any]:
    """A Faust agent that does nothing over the same records (bench/faust_floor.py)."""
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "faust_floor.py"),
            "--bootstrap",
            bootstrap,
            "--group",
            group,
            "--expect",
            str(expect),
            "--timeout",
            str(timeout_s),
            *topics,
        ],
        capture_output=True,
        text=True,
        timeout=timeout_s + 120,
        check=False,
    )
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("{"):
            result: dict[str, Any] = json.loads(line)
            return result
    return {"error": (out.stderr or out.stdout)[-2_000:]}


class OutputWatch:
    """When the combiner writes its first record to `topic` (its end offsets move)."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self._consumer = Consumer(
            {**kafka.client_config(), "group.id": f"bench-watch-{uuid.uuid4().hex[:6]}"}
        )
        meta = self._consumer.list_topics(topic, timeout=10)
        self._tps = [TopicPartition(topic, p) for p in meta.topics[topic].partitions]
        self._start = self._ends()

    def _ends(self) -> list[int]:
        return [self._consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in self._tps]

    def wait_first(self, timeout_s: float) -> float | None:
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                if self._ends() != self._start:
                    return time.perf_counter()
                time.sleep(0.005)
            return None
        finally:
            self._consumer.close()


def broker_pid() -> int | None:
    """The bench's own broker (bench/_broker.py), for its CPU over a drain."""
    return bench_broker_pid()


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def roundtrip_floor(kafka: KafkaSettings, rate: float, seconds: float) -> dict[str, Any]:
    """The freshness floor: records produced at `rate`/s (our producer settings) to a scratch
    topic and read by a bare confluent-kafka consumer; time from produce to consume. What any
    worker's freshness at that rate includes before it does anything."""
    import threading

    from shopstream_platform.kafka.admin import ensure_topics
    from shopstream_platform.testing import scratch_topic_spec

    topic = f"bench.freshness-floor.{uuid.uuid4().hex[:8]}.v1"
    ensure_topics(kafka, [scratch_topic_spec(topic, 6)])
    consumer = Consumer(
        {
            **kafka.client_config(),
            "group.id": f"bench-roundtrip-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    n = int(rate * seconds)
    latencies: list[float] = []
    done = threading.Event()

    def read() -> None:
        while len(latencies) < n and not done.is_set():
            for msg in consumer.consume(num_messages=10_000, timeout=0.1):
                if not msg.error():
                    latencies.append(time.time() - float(msg.value() or b"0"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(2.0)  # the consumer's assignment
    producer = Producer(producer_config(kafka, "bench-roundtrip"))
    t0 = time.perf_counter()
    tick = max(1, int(rate / 200))
    for k in range(n):
        producer.produce(topic, str(time.time()).encode(), str(k).encode())
        if k % tick == tick - 1:
            producer.poll(0)
            time.sleep(max(0.0, t0 + (k + 1) / rate - time.perf_counter()))
    producer.flush(30)
    deadline = time.monotonic() + 30
    while len(latencies) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    done.set()
    reader.join()  # never close a consumer another thread is reading from
    consumer.close()
    ordered = sorted(latencies)

    def q(p: float) -> float | None:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 3) if ordered else None

    return {
        "rate_per_s": rate,
        "records": n,
        "read": len(ordered),
        "p50_s": q(0.5),
        "p99_s": q(0.99),
    }
