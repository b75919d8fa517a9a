"""Producer throughput: our EventProducer path vs Kafka's own ProducerPerformance tool.

Target (design): our producer path (protobuf value + CloudEvents headers, via
EventProducer.publish) reaches at least half the records/s of Kafka's ProducerPerformance
on the same broker and record size.

Each repeat runs, one after the other on fresh 6-partition topics:
  1. org.apache.kafka.tools.ProducerPerformance (via deploy/kafka/kafka.sh run-class) with
     the producer settings translated from shopstream_platform.kafka.producer.producer_config;
     its own final summary line gives records/s.
  2. EventProducer.publish of N shopstream.catalog.v1.ProductCreated messages whose serialized
     size is the record size (description padded with random A-Z, like ProducerPerformance's
     payload, so lz4 sees the same kind of data), timed from the first publish to flush()
     returning, every delivery report counted.
Both topics' end offsets are checked afterwards (each must hold exactly N records) and the
topics are deleted. The reported figure is the median over the repeats.

    uv run python bench/producer_bench.py [--bootstrap 127.0.0.1:9092] [-n 200000] [-s 256]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import json
import os
import pstats
import random
import re
import resource
import string
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _broker import bench_bootstrap
from _common import KAFKA_SH, REPO, median
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from shopstream.catalog.v1 import catalog_pb2, events_pb2
from shopstream.common.v1 import money_pb2
from shopstream_platform.kafka.admin import ensure_topics
from shopstream_platform.kafka.cloudevents import CloudEventMeta, new_event_id
from shopstream_platform.kafka.codec import type_name
from shopstream_platform.kafka.producer import EventProducer, producer_config
from shopstream_platform.metrics import PlatformMetrics
from shopstream_platform.settings import KafkaSettings
from shopstream_platform.testing import scratch_topic_spec
from shopstream_platform.tracing import outgoing_traceparent

TARGET_RATIO = 0.5
PARTITIONS = 6
# librdkafka's own default batch.size (bytes per partition batch); Java's default is 16384,
# so it is stated for the Java tool to batch like our producer does.
LIBRDKAFKA_BATCH_SIZE = 1_000_000
MIN_RECORDS_FOR_VERDICT = 200_000
MESSAGE_POOL = 1024  # distinct pre-built messages, cycled (keys: their product ids)

_SUMMARY = re.compile(
    r"(?P<sent>\d+) records sent, (?P<rps>[\d.]+) records/sec \((?P<mbps>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency, "
    r"(?P<p50>\d+) ms 50th, (?P<p95>\d+) ms 95th, (?P<p99>\d+) ms 99th, (?P<p999>\d+) ms 99.9th"
)

# librdkafka producer setting -> Java producer setting; the rest have no Java twin.
_TO_JAVA = {
    "acks": "acks",
    "enable.idempotence": "enable.idempotence",
    "max.in.flight.requests.per.connection": "max.in.flight.requests.per.connection",
    "message.timeout.ms": "delivery.timeout.ms",
    "linger.ms": "linger.ms",
    "compression.type": "compression.type",
}


def java_producer_props(settings: KafkaSettings, batch_size: int) -> dict[str, str]:
    """Our producer's settings (producer_config) in Java client terms."""
    ours = producer_config(settings, "bench")
    props = {"bootstrap.servers": settings.bootstrap_servers, "client.id": "bench-java"}
    for key, java_key in _TO_JAVA.items():
        value = ours[key]
        props[java_key] = str(value).lower() if isinstance(value, bool) else str(value)
    props["batch.size"] = str(batch_size)
    return props


def run_java(
    topic: str, num_records: int, record_size: int, props: dict[str, str], timeout_s: float
) -> dict[str, Any]:
    cmd = [
        "bash",
        str(KAFKA_SH),
        "run-class",
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic",
        topic,
        "--num-records",
        str(num_records),
        "--record-size",
        str(record_size),
        "--throughput",
        "-1",
        "--producer-props",
        *[f"{k}={v}" for k, v in props.items()],
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout_s, check=False
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise RuntimeError(
            f"ProducerPerformance exited {out.returncode}:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}"
        )
    matches = list(_SUMMARY.finditer(out.stdout))
    if not matches:
        raise RuntimeError(f"no summary line in ProducerPerformance output:\n{out.stdout[-2000:]}")
    m = matches[-1]
    return {
        "records": int(m["sent"]),
        "records_per_s": float(m["rps"]),
        "mb_per_s": float(m["mbps"]),
        "latency_ms": {
            "avg": float(m["avg"]),
            "p50": int(m["p50"]),
            "p95": int(m["p95"]),
            "p99": int(m["p99"]),
            "p999": int(m["p999"]),
            "max": float(m["max"]),
        },
        "summary_line": m.group(0),
        # Whole JVM, start-up and JIT included: for scale, not for the ratio.
        "jvm_cpu_s": round(
            (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2
        ),
        "jvm_wall_s": round(wall, 2),
    }


def build_messages(record_size: int, pool: int, seed: int = 42) -> list[events_pb2.ProductCreated]:
    """ProductCreated events whose serialized size is record_size (when that is reachable)."""
    rng = random.Random(seed)
    letters = string.ascii_uppercase
    messages = []
    for i in range(pool):
        product = catalog_pb2.Product(
            product_id=f"prd-bench-{i:06d}",
            seller_id="seller-bench",
            title="Bench product",
            category_id="sports",
            brand="Acme",
            status=catalog_pb2.LISTING_STATUS_ACTIVE,
            version=1,
        )
        sku = product.skus.add(
            sku_id=f"sku-bench-{i:06d}",
            price=money_pb2.Money(amount_minor=1_999, currency="GBP"),
            available=10,
        )
        sku.stock.add(warehouse_id="w1", on_hand=10, reserved=0)
        product.created_at.FromSeconds(1_750_000_000)
        product.updated_at.FromSeconds(1_750_000_000)
        event = events_pb2.ProductCreated(product=product)
        # Grow the description until the encoding reaches the size (length prefixes are
        # varints, so a couple of steps may be needed).
        length = max(0, record_size - event.ByteSize() - 3)
        for _ in range(8):
            event.product.description = "A" * length
            diff = record_size - event.ByteSize()
            if diff == 0 or length + diff < 0:
                break
            length += diff
        event.product.description = "".join(rng.choice(letters) for _ in range(length))
        messages.append(event)
    return messages


def run_ours(
    settings: KafkaSettings,
    topic: str,
    num_records: int,
    messages: list[events_pb2.ProductCreated],
    *,
    with_metrics: bool,
    flush_timeout_s: float,
    profiler: cProfile.Profile | None = None,
    batch: int = 0,
) -> dict[str, Any]:
    """Our path: `publish` per record, or with `batch` > 0 `publish_batch` of that many."""
    metrics = PlatformMetrics("bench") if with_metrics else None
    producer = EventProducer(
        settings, "shopstream/bench", metrics, client_id=f"bench-{uuid.uuid4().hex[:6]}"
    )
    acks = (
        itertools.count()
    )  # next() is atomic under the GIL: the poll thread and flush both call back
    errors: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is None:
            next(acks)
        else:
            errors.append(str(err))

    keys = [m.product.product_id for m in messages]
    pool = len(messages)
    # The batch path's input, cycled like the per-record loop's (built before timing).
    pairs = [(keys[i % pool], messages[i % pool]) for i in range(min(num_records, 4 * pool))]
    try:
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        if profiler is not None:
            profiler.enable()
        t0 = time.perf_counter()
        if batch > 0:
            sent = 0
            while sent < num_records:
                size = min(batch, num_records - sent)
                start = sent % len(pairs)
                chunk = pairs[start : start + size]
                producer.publish_batch(topic, chunk, on_delivery=on_delivery)
                sent += len(chunk)
        else:
            for i in range(num_records):
                j = i % pool
                producer.publish(topic, keys[j], messages[j], on_delivery=on_delivery)
        t_enqueued = time.perf_counter()
        remaining = producer.flush(flush_timeout_s)
        t1 = time.perf_counter()
        if profiler is not None:
            profiler.disable()
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        producer.close(timeout_s=10)
    acked = next(acks)
    elapsed = t1 - t0
    cpu_s = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {
        "records": num_records,
        "acked": acked,
        "delivery_errors": len(errors),
        "first_errors": errors[:3],
        "undelivered_after_flush": remaining,
        "records_per_s": num_records / elapsed,
        "elapsed_s": round(elapsed, 3),
        "enqueue_s": round(t_enqueued - t0, 3),
        "enqueue_records_per_s": num_records / (t_enqueued - t0),
        # Process CPU (all threads: Python + librdkafka) during the timed window.
        "cpu_s": round(cpu_s, 3),
        "cpu_user_s": round(cpu1.ru_utime - cpu0.ru_utime, 3),
        "cpu_sys_s": round(cpu1.ru_stime - cpu0.ru_stime, 3),
        "cpu_cores_used": round(cpu_s / elapsed, 2),
        "cpu_us_per_record": round(cpu_s / num_records * 1e6, 2),
    }


def end_offsets(bootstrap: str, topic: str) -> int:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-offsets-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    try:
        total = 0
        for p in range(PARTITIONS):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            total += high - low
        return total
    finally:
        consumer.close()


def delete_topics(bootstrap: str, topics: list[str]) -> None:
    if not topics:
        return
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics(topics, request_timeout=30).values():
        try:
            future.result(timeout=30)
        except Exception as exc:  # best effort: retention (1 h) removes the data anyway
            print(f"  (could not delete a bench topic: {exc})", file=sys.stderr)


def profile_report(profiler: cProfile.Profile, top: int = 25) -> str:
    buf = io.StringIO()
    stats = pstats.Stats(profiler, stream=buf)
    stats.sort_stats("tottime").print_stats(top)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bootstrap", default=None, help="a broker to use (default: one of the bench's own)"
    )
    parser.add_argument("-n", "--num-records", type=int, default=200_000)
    parser.add_argument("-s", "--record-size", type=int, default=256, help="value bytes")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs; median kept")
    parser.add_argument(
        "--java-batch-size",
        type=int,
        default=LIBRDKAFKA_BATCH_SIZE,
        help="batch.size for the Java tool (default: librdkafka's default, as our producer uses)",
    )
    parser.add_argument(
        "--no-metrics", action="store_true", help="EventProducer without Prometheus metrics"
    )
    parser.add_argument(
        "--profile", action="store_true", help="one extra cProfile'd run of our path (not timed)"
    )
    parser.add_argument(
        "--batch", type=int, default=1_000, help="records per publish_batch call (0: skip)"
    )
    parser.add_argument("--keep-topics", action="store_true")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)

    bootstrap = args.bootstrap = bench_bootstrap(args.bootstrap)
    n, size = args.num_records, args.record_size
    settings = KafkaSettings(bootstrap_servers=bootstrap, connect_timeout_s=20)
    # Generous bounds: at 5k records/s, 200k records take 40 s.
    run_timeout_s = 120 + n / 2_000
    props = java_producer_props(settings, args.java_batch_size)
    messages = build_messages(size, MESSAGE_POOL)
    value_sizes = [m.ByteSize() for m in messages]
    # The headers EventProducer.meta_for stamps on every record (what goes on the wire).
    meta = CloudEventMeta(
        id=new_event_id(),
        type=type_name(messages[0]),
        source="shopstream/bench",
        time=datetime.now(UTC),
        traceparent=outgoing_traceparent(),
    )
    header_bytes = sum(len(k) + len(v or b"") for k, v in meta.to_headers())

    print(
        f"producer bench: {n} records of {size} B, {PARTITIONS} partitions, bootstrap {bootstrap}"
    )
    print(f"  java props: {' '.join(f'{k}={v}' for k, v in props.items())}")
    print(
        f"  ours: EventProducer.publish(ProductCreated {min(value_sizes)}-{max(value_sizes)} B"
        f" value, key ~17 B, CloudEvents headers {header_bytes} B), metrics "
        f"{'off' if args.no_metrics else 'on'}"
    )

    topics: list[str] = []
    java_runs: list[dict[str, Any]] = []
    our_runs: list[dict[str, Any]] = []
    batch_runs: list[dict[str, Any]] = []
    profile_text = None
    try:
        for r in range(args.repeats):
            tag = uuid.uuid4().hex[:8]
            java_topic, our_topic = f"bench.producer-java.{tag}.v1", f"bench.producer-ours.{tag}.v1"
            ensure_topics(
                settings,
                [
                    scratch_topic_spec(java_topic, PARTITIONS),
                    scratch_topic_spec(our_topic, PARTITIONS),
                ],
            )
            topics += [java_topic, our_topic]
            java = run_java(java_topic, n, size, props, run_timeout_s)
            java["topic_records"] = end_offsets(bootstrap, java_topic)
            java_runs.append(java)
            ours = run_ours(
                settings,
                our_topic,
                n,
                messages,
                with_metrics=not args.no_metrics,
                flush_timeout_s=run_timeout_s,
            )
            ours["topic_records"] = end_offsets(bootstrap, our_topic)
            our_runs.append(ours)
            if args.batch > 0:
                batch_topic = f"bench.producer-batch.{tag}.v1"
                ensure_topics(settings, [scratch_topic_spec(batch_topic, PARTITIONS)])
                topics.append(batch_topic)
                batched = run_ours(
                    settings,
                    batch_topic,
                    n,
                    messages,
                    with_metrics=not args.no_metrics,
                    flush_timeout_s=run_timeout_s,
                    batch=args.batch,
                )
                batched["topic_records"] = end_offsets(bootstrap, batch_topic)
                batch_runs.append(batched)
                print(
                    f"           batch path ({args.batch}/call): "
                    f"{batched['records_per_s']:>10,.0f} rec/s (CPU "
                    f"{batched['cpu_us_per_record']:.1f} us/rec, errors "
                    f"{batched['delivery_errors']}, on topic {batched['topic_records']})"
                )
            print(
                f"  run {r + 1}/{args.repeats}: java {java['records_per_s']:>10,.0f} rec/s | "
                f"ours {ours['records_per_s']:>10,.0f} rec/s "
                f"(enqueue {ours['enqueue_records_per_s']:,.0f}/s, CPU {ours['cpu_s']:.2f} s = "
                f"{ours['cpu_cores_used']:.2f} cores, {ours['cpu_us_per_record']:.1f} us/rec, "
                f"errors {ours['delivery_errors']}, on topic {ours['topic_records']})"
            )
        if args.profile:
            tag = uuid.uuid4().hex[:8]
            prof_topic = f"bench.producer-profile.{tag}.v1"
            ensure_topics(settings, [scratch_topic_spec(prof_topic, PARTITIONS)])
            topics.append(prof_topic)
            profiler = cProfile.Profile()
            run_ours(
                settings,
                prof_topic,
                n,
                messages,
                with_metrics=not args.no_metrics,
                flush_timeout_s=run_timeout_s,
                profiler=profiler,
            )
            profile_text = profile_report(profiler)
            print("\n  cProfile of one run of our path (sorted by own time):")
            print("\n".join("    " + line for line in profile_text.splitlines()))
    finally:
        if not args.keep_topics:
            delete_topics(bootstrap, topics)

    java_rps = median([j["records_per_s"] for j in java_runs])
    our_rps = median([o["records_per_s"] for o in our_runs])
    ratio = our_rps / java_rps if java_rps else 0.0
    errors = sum(o["delivery_errors"] + o["undelivered_after_flush"] for o in our_runs)
    complete = all(o["acked"] == n and o["topic_records"] == n for o in our_runs) and all(
        j["records"] == n and j["topic_records"] == n for j in java_runs
    )
    # Below this the Java tool's JVM start-up and JIT warm-up, which sit inside its own timing,
    # dominate its figure (20k records: ~10k records/s) and the ratio says nothing.
    judged = n >= MIN_RECORDS_FOR_VERDICT
    met = judged and ratio >= TARGET_RATIO and errors == 0 and complete
    batch_rps = median([b["records_per_s"] for b in batch_runs]) if batch_runs else None
    batch_complete = all(b["acked"] == n and b["topic_records"] == n for b in batch_runs)
    batch_errors = sum(b["delivery_errors"] + b["undelivered_after_flush"] for b in batch_runs)
    result: dict[str, Any] = {
        "name": "producer",
        "target": f"ours >= {TARGET_RATIO} x ProducerPerformance records/s, 0 delivery errors",
        "num_records": n,
        "record_size": size,
        "partitions": PARTITIONS,
        "repeats": args.repeats,
        "java_props": props,
        "our_value_bytes": [min(value_sizes), max(value_sizes)],
        "our_header_bytes": header_bytes,
        "metrics": not args.no_metrics,
        "java_records_per_s": round(java_rps),
        "ours_records_per_s": round(our_rps),
        "ours_cpu_s_median": median([o["cpu_s"] for o in our_runs]),
        "ours_cpu_us_per_record_median": median([o["cpu_us_per_record"] for o in our_runs]),
        "ratio": round(ratio, 3),
        "delivery_errors": errors,
        "all_records_on_topics": complete,
        "judged": judged,
        "target_met": met,
        "java_runs": java_runs,
        "our_runs": our_runs,
        "batch_size": args.batch,
        "batch_records_per_s": round(batch_rps) if batch_rps else None,
        "batch_ratio": round(batch_rps / java_rps, 3) if batch_rps and java_rps else None,
        "batch_cpu_us_per_record_median": median([b["cpu_us_per_record"] for b in batch_runs])
        if batch_runs
        else None,
        "batch_delivery_errors": batch_errors,
        "batch_all_records_on_topic": batch_complete,
        "batch_runs": batch_runs,
    }
    if profile_text:
        result["profile_top"] = profile_text
    print(
        f"  median: java {java_rps:,.0f} rec/s, ours {our_rps:,.0f} rec/s, ratio {ratio:.2f} "
        f"(target >= {TARGET_RATIO}), delivery errors {errors}, all records on topics {complete}"
        f" -> {'MET' if met else 'NOT MET' if judged else 'NOT JUDGED'}"
    )
    if batch_rps:
        print(
            f"  batch path: {batch_rps:,.0f} rec/s, ratio {batch_rps / java_rps:.2f}, delivery "
            f"errors {batch_errors}, all records on topic {batch_complete}"
        )
    if not judged:
        print(
            f"  (fewer than {MIN_RECORDS_FOR_VERDICT:,} records: JVM warm-up dominates the Java "
            "figure, so the target is not judged)"
        )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    os.chdir(REPO)
    main()
