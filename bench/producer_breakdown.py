"""Where our producer path spends its time: the same N records through variants that add one
layer at a time, from bare confluent-kafka to EventProducer.publish, plus two variants that
simulate candidate fixes (by patching the bench process only; libs/ is not changed).

Not part of `make bench`; run it when the producer target is missed:

    uv run python bench/producer_breakdown.py [--bootstrap 127.0.0.1:9092] [-n 200000]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _broker import bench_bootstrap
from _common import REPO, median
from confluent_kafka import Producer
from producer_bench import (
    MESSAGE_POOL,
    PARTITIONS,
    build_messages,
    delete_topics,
    end_offsets,
)

from shopstream_platform import tracing
from shopstream_platform.kafka import cloudevents
from shopstream_platform.kafka import producer as producer_mod
from shopstream_platform.kafka.admin import ensure_topics
from shopstream_platform.kafka.producer import EventProducer, producer_config
from shopstream_platform.metrics import PlatformMetrics
from shopstream_platform.settings import KafkaSettings
from shopstream_platform.testing import scratch_topic_spec

Publish = Callable[[int], None]


class PolledProducer:
    """A bare confluent-kafka Producer with a poll thread, like EventProducer has."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.producer = Producer(config)
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._closing.is_set():
            self.producer.poll(0.1)

    def flush(self, timeout: float) -> int:
        return int(self.producer.flush(timeout))

    def close(self) -> None:
        self.producer.flush(10)
        self._closing.set()
        self._thread.join(5)


def thread_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds of each thread of this process, by native thread id."""
    tick = os.sysconf("SC_CLK_TCK")
    result = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        comm = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        result[int(tid)] = (comm, (int(fields[11]) + int(fields[12])) / tick)
    return result


def cpu_by_role(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], poll_tid: int | None
) -> dict[str, float]:
    """Per-record-run CPU split: main thread, our poll thread, librdkafka's own threads."""
    main_tid = os.getpid()
    roles: dict[str, float] = {}
    for tid, (comm, cpu) in after.items():
        used = cpu - before.get(tid, (comm, 0.0))[1]
        if tid == main_tid:
            role = "main"
        elif tid == poll_tid:
            role = "poll"
        elif comm.startswith("rdk:"):
            role = "librdkafka"
        else:
            role = "other"
        roles[role] = roles.get(role, 0.0) + used
    return roles


def _fast_event_id() -> str:
    # A version-4 UUID from the (non-cryptographic) Mersenne Twister, formatted as uuid4 would be.
    return str(uuid.UUID(int=random.getrandbits(128), version=4))


def _fast_traceparent() -> str:
    return f"00-{random.getrandbits(128):032x}-{random.getrandbits(64):016x}-01"


def _fast_format_time(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class LeanPublisher:
    """Prototype of a leaner EventProducer.publish (same records, headers and metrics on the wire
    and in Prometheus), to size what the suggested changes would buy:
      - constant CloudEvents headers (specversion, type, source, content-type) built once per
        message type, values passed as str (confluent-kafka encodes them in C);
      - ce_id and a fresh traceparent from one os.urandom(40) call, ce_time via isoformat;
      - one bound delivery callback for every record (no closure per record) that increments a
        cached labelled counter child instead of calling .labels() per delivery.
    """

    def __init__(self, producer: Producer, source: str, metrics: PlatformMetrics) -> None:
        self._produce = producer.produce
        self._flush = producer.flush
        self._source = source
        self._metrics = metrics
        self._static: dict[str, list[tuple[str, str]]] = {}
        self._acked: dict[str, Any] = {}
        self.acks = itertools.count()
        self.errors: list[str] = []

    def _delivered(self, err: Any, msg: Any) -> None:
        topic = msg.topic()
        if err is None:
            child = self._acked.get(topic)
            if child is None:
                m = self._metrics
                child = self._acked[topic] = m.events_produced.labels(m.service, topic, "acked")
            child.inc()
            next(self.acks)
        else:
            m = self._metrics
            m.events_produced.labels(m.service, topic, "error").inc()
            self.errors.append(str(err))

    def publish(self, topic: str, key: str, message: Any) -> None:
        type_name = message.DESCRIPTOR.full_name
        static = self._static.get(type_name)
        if static is None:
            static = self._static[type_name] = [
                ("ce_specversion", "1.0"),
                ("ce_type", type_name),
                ("ce_source", self._source),
                ("content-type", "application/protobuf"),
            ]
        r = bytearray(os.urandom(40))  # 16 for ce_id, 16 + 8 for trace and span ids
        r[6] = (r[6] & 0x0F) | 0x40
        r[8] = (r[8] & 0x3F) | 0x80
        h = r.hex()
        parent = tracing.current_traceparent.get()
        traceparent = tracing.child_traceparent(parent) if parent else f"00-{h[32:64]}-{h[64:]}-01"
        headers = [
            *static,
            ("ce_id", f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"),
            ("ce_time", datetime.now(UTC).isoformat(timespec="microseconds")[:-6] + "Z"),
            ("traceparent", traceparent),
        ]
        value = message.SerializeToString()
        while True:
            try:
                self._produce(topic, value, key, headers=headers, on_delivery=self._delivered)
                return
            except BufferError:
                self._flush(0.1)


@contextmanager
def patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bootstrap", default=None, help="a broker to use (default: one of the bench's own)"
    )
    parser.add_argument("-n", "--num-records", type=int, default=200_000)
    parser.add_argument("-s", "--record-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    bootstrap = args.bootstrap = bench_bootstrap(args.bootstrap)
    n = args.num_records
    settings = KafkaSettings(bootstrap_servers=bootstrap, connect_timeout_s=20)
    config = producer_config(settings, "bench-breakdown")
    messages = build_messages(args.record_size, MESSAGE_POOL)
    pool = len(messages)
    keys = [m.product.product_id for m in messages]
    keys_b = [k.encode() for k in keys]
    values = [m.SerializeToString() for m in messages]
    base = EventProducer(settings, "shopstream/bench")
    metas = [base.meta_for(m) for m in messages]
    base.close()
    headers = [m.to_headers() for m in metas]
    flush_timeout = 120 + n / 2_000

    def noop(_err: Any, _msg: Any) -> None:
        pass

    def variant_raw(
        extra: dict[str, Any], *, with_headers: bool, callback: bool
    ) -> Callable[[str], dict[str, Any]]:
        def run(topic: str) -> dict[str, Any]:
            p = PolledProducer({**config, **extra})
            produce = p.producer.produce
            kw: dict[str, Any] = {"on_delivery": noop} if callback else {}

            def one(i: int) -> None:
                j = i % pool
                while True:
                    try:
                        if with_headers:
                            produce(topic, value=values[j], key=keys_b[j], headers=headers[j], **kw)
                        else:
                            produce(topic, value=values[j], key=keys_b[j], **kw)
                        return
                    except BufferError:
                        p.producer.flush(0.1)

            return timed(one, p.flush, p.close, p._thread.native_id)

        return run

    def variant_event(mode: str, *, metrics: bool) -> Callable[[str], dict[str, Any]]:
        def run(topic: str) -> dict[str, Any]:
            ep = EventProducer(
                settings, "shopstream/bench", PlatformMetrics("bench") if metrics else None
            )
            acks = itertools.count()

            def on_delivery(err: Any, _msg: Any) -> None:
                if err is None:
                    next(acks)

            if mode == "produce_raw":

                def one(i: int) -> None:
                    j = i % pool
                    ep.produce_raw(topic, keys_b[j], values[j], headers[j], on_delivery)

            elif mode == "publish_with_meta":

                def one(i: int) -> None:
                    j = i % pool
                    ep.publish(topic, keys[j], messages[j], meta=metas[j], on_delivery=on_delivery)

            else:

                def one(i: int) -> None:
                    j = i % pool
                    ep.publish(topic, keys[j], messages[j], on_delivery=on_delivery)

            return timed(one, ep.flush, lambda: ep.close(10), ep._poller.native_id)

        return run

    def timed(
        one: Publish, flush: Callable[[float], int], close: Callable[[], Any], poll_tid: int | None
    ) -> dict[str, Any]:
        try:
            threads0 = thread_cpu()
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            t0 = time.perf_counter()
            for i in range(n):
                one(i)
            t_enq = time.perf_counter()
            left = flush(flush_timeout)
            t1 = time.perf_counter()
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            roles = cpu_by_role(threads0, thread_cpu(), poll_tid)
        finally:
            close()
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        return {
            "records_per_s": n / (t1 - t0),
            "enqueue_records_per_s": n / (t_enq - t0),
            "cpu_us_per_record": cpu / n * 1e6,
            "undelivered": left,
            "thread_cpu_us_per_record": {k: v / n * 1e6 for k, v in roles.items()},
        }

    def variant_lean(extra: dict[str, Any]) -> Callable[[str], dict[str, Any]]:
        def run(topic: str) -> dict[str, Any]:
            p = PolledProducer({**config, **extra})
            lean = LeanPublisher(p.producer, "shopstream/bench", PlatformMetrics("bench"))

            def one(i: int) -> None:
                j = i % pool
                lean.publish(topic, keys[j], messages[j])

            result = timed(one, p.flush, p.close, p._thread.native_id)
            result["errors"] = len(lean.errors)
            return result

        return run

    def with_fast_meta(run: Callable[[str], dict[str, Any]]) -> Callable[[str], dict[str, Any]]:
        def wrapped(topic: str) -> dict[str, Any]:
            with (
                patched(producer_mod, "new_event_id", _fast_event_id),
                patched(producer_mod, "outgoing_traceparent", lambda: _fast_traceparent()),
                patched(cloudevents, "format_time", _fast_format_time),
            ):
                return run(topic)

        return wrapped

    variants: list[tuple[str, Callable[[str], dict[str, Any]]]] = [
        (
            "1 confluent-kafka produce(value, key)",
            variant_raw({}, with_headers=False, callback=False),
        ),
        (
            "2  + 7 CloudEvents headers (pre-built)",
            variant_raw({}, with_headers=True, callback=False),
        ),
        ("3  + Python on_delivery per record", variant_raw({}, with_headers=True, callback=True)),
        (
            "4 EventProducer.produce_raw (pre-built bytes+headers, metrics)",
            variant_event("produce_raw", metrics=True),
        ),
        ("4b  same, no metrics", variant_event("produce_raw", metrics=False)),
        (
            "5 EventProducer.publish(meta=pre-built) (serialize, metrics)",
            variant_event("publish_with_meta", metrics=True),
        ),
        ("6 EventProducer.publish, no metrics", variant_event("publish", metrics=False)),
        ("7 EventProducer.publish (as shipped, metrics)", variant_event("publish", metrics=True)),
        (
            "8 #7 with fast ids/traceparent/time (patched here)",
            with_fast_meta(variant_event("publish", metrics=True)),
        ),
        ("9 prototype lean publish (see LeanPublisher)", variant_lean({})),
        (
            "10 #9 + delivery.report.only.error=true",
            variant_lean({"delivery.report.only.error": True}),
        ),
    ]
    print(
        f"producer breakdown: {n} records of {args.record_size} B, {PARTITIONS} partitions, {bootstrap}"
    )
    results: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in variants}
    topics: list[str] = []
    try:
        for _ in range(args.repeats):
            for name, run in variants:
                topic = f"bench.producer-breakdown.{uuid.uuid4().hex[:8]}.v1"
                ensure_topics(settings, [scratch_topic_spec(topic, PARTITIONS)])
                topics.append(topic)
                r = run(topic)
                r["topic_records"] = end_offsets(bootstrap, topic)
                results[name].append(r)
    finally:
        delete_topics(bootstrap, topics)
    summary = {}
    print(
        f"  {'variant':66s} {'rec/s':>9s} {'enqueue/s':>10s} {'CPU us/rec':>10s}"
        "   of which main/poll/librdkafka threads"
    )
    for name, runs in results.items():
        row: dict[str, Any] = {
            "records_per_s": round(median([r["records_per_s"] for r in runs])),
            "enqueue_records_per_s": round(median([r["enqueue_records_per_s"] for r in runs])),
            "cpu_us_per_record": round(median([r["cpu_us_per_record"] for r in runs]), 1),
            "all_on_topic": all(r["topic_records"] == n for r in runs),
            "thread_cpu_us_per_record": {
                role: round(median([r["thread_cpu_us_per_record"].get(role, 0.0) for r in runs]), 1)
                for role in ("main", "poll", "librdkafka")
            },
        }
        summary[name] = row
        print(
            f"  {name:66s} {row['records_per_s']:>9,} {row['enqueue_records_per_s']:>10,} "
            f"{row['cpu_us_per_record']:>10}   "
            + "/".join(
                str(row["thread_cpu_us_per_record"][r]) for r in ("main", "poll", "librdkafka")
            )
            + ("" if row["all_on_topic"] else "  (records missing!)")
        )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    os.chdir(REPO)
    main()
