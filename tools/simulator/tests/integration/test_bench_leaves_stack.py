"""`make bench` leaves the local stack's broker as it found it, so a `make run` after it starts
from the same topics and groups as without it (and catches every fraud, as the simulated-day
test shows on a clean broker).

Before: `make bench` wrote into the stack's own topics under its own groups, and a `make run`
after it caught 0 of 278 bot clicks (the ads worker first read 36,000 bench ledger entries).
Now every bench runs on a broker of its own (bench/_broker.py). This test runs the quick bench
(each Kafka-using bench at tiny sizes) with no broker named, then checks the stack's broker:
no record from the benches in any registry topic, no bench topic, no bench or stack consumer
group created. Other engineers' tests share the broker, so records and groups they add are
expected; what is checked is that none of them is the bench's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from shopstream_platform.kafka.topics import load_registry
from shopstream_platform.testing import KAFKA_ENV

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[4]
BENCH_SOURCE = b"shopstream/bench"  # ce_source of every record a bench produces itself
# The groups a stack's services use (docs: the large day's set-up), and any bench's.
STACK_GROUPS = ("catalog.orders", "ads", "ads.combiner", "creator-score", "creator-score.combiner")
STACK_GROUP_PREFIXES = ("commerce.", "ads.ads.")
BENCHES = "producer,get_product,creator_scoring,ads_attribution,order_saga"  # those using Kafka

Offsets = dict[tuple[str, int], int]


def looks_like_bench(
    key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
) -> bool:
    """A record a bench left: its own source, or a bench's ids (bench-seller, bench creators)."""
    if any(name == "ce_source" and v == BENCH_SOURCE for name, v in headers):
        return True
    return b"bench" in (key or b"") or b"bench" in (value or b"")


def is_bench_or_stack_group(group: str) -> bool:
    return (
        "bench" in group
        or group in STACK_GROUPS
        or any(group.startswith(p) for p in STACK_GROUP_PREFIXES)
    )


def end_offsets(consumer: Consumer, topics: set[str]) -> Offsets:
    metadata = consumer.list_topics(timeout=10).topics
    ends = {}
    for topic in sorted(topics & set(metadata)):
        for partition in metadata[topic].partitions:
            tp = TopicPartition(topic, partition)
            ends[(topic, partition)] = consumer.get_watermark_offsets(tp, timeout=10)[1]
    return ends


def records_between(bootstrap: str, before: Offsets, after: Offsets) -> list[tuple[str, bool]]:
    """(topic, looks like a bench's) of every record appended between the two snapshots."""
    todo = {tp: end for tp, end in after.items() if end > before.get(tp, 0)}
    if not todo:
        return []
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "unused-assign-only",
            "enable.auto.commit": False,
            # Aborted transactions' records were written too: see them all.
            "isolation.level": "read_uncommitted",
        }
    )
    assigned = [TopicPartition(t, p, before.get((t, p), 0)) for (t, p) in todo]
    consumer.assign(assigned)
    seen: list[tuple[str, bool]] = []
    behind = set(todo)
    idle = 0
    try:
        while behind and idle < 40:
            batch = consumer.consume(num_messages=5_000, timeout=0.5)
            idle = 0 if batch else idle + 1
            for msg in batch:
                if msg.error():
                    continue
                tp = (msg.topic() or "", msg.partition() or 0)
                if (msg.offset() or 0) < todo[tp]:
                    seen.append(
                        (tp[0], looks_like_bench(msg.key(), msg.value(), msg.headers() or []))
                    )
            # Positions, not offsets seen: a transaction's commit marker takes an offset too.
            for p in consumer.position([TopicPartition(t, n) for (t, n) in behind]):
                if p.offset >= todo[(p.topic, p.partition)]:
                    behind.discard((p.topic, p.partition))
    finally:
        consumer.close()
    assert not behind, f"could not read every appended record: {behind}"
    return seen


def test_the_check_sees_a_bench_record() -> None:
    """The detector is not blind: a bench's own record and a bench service's output are found."""
    assert looks_like_bench(b"k", b"v", [("ce_source", BENCH_SOURCE)])
    assert looks_like_bench(b"prd-1", b"...bench-seller...", [("ce_source", b"shopstream/catalog")])
    assert not looks_like_bench(b"prd-1", b"seller-7", [("ce_source", b"shopstream/catalog")])
    assert is_bench_or_stack_group("creator-score-bench-1a2b3c4d")
    assert is_bench_or_stack_group("commerce.orders")
    assert not is_bench_or_stack_group("test-group-5f1e")


@pytest.mark.timeout(900)
def test_a_bench_run_leaves_the_stacks_broker_as_it_found_it(tmp_path: Path) -> None:
    bootstrap = os.environ.get(KAFKA_ENV, "127.0.0.1:9092")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    registry = {t.name for t in load_registry().with_dlqs()}
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": "unused-probe"})
    try:
        topics_before = set(probe.list_topics(timeout=10).topics)
        offsets_before = end_offsets(probe, registry)
        groups_before = {g.group_id for g in admin.list_consumer_groups().result().valid}

        # No broker named: the benches start their own, as under `make bench`.
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("SHOPSTREAM_BENCH_BOOTSTRAP", "SHOPSTREAM_BENCH_RUN_DIR")
        }
        run = subprocess.run(
            [
                sys.executable,
                str(REPO / "bench" / "run_all.py"),
                "--quick",
                "--only",
                BENCHES,
                "--results-dir",
                str(tmp_path),
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=840,
            check=False,
        )
        assert run.returncode == 0, run.stdout[-3_000:] + run.stderr[-3_000:]

        offsets_after = end_offsets(probe, registry)
        topics_after = set(probe.list_topics(timeout=10).topics)
        groups_after = {g.group_id for g in admin.list_consumer_groups().result().valid}
    finally:
        probe.close()

    # The benches ran, on another broker, and really sent and consumed records there.
    (report_path,) = [p for p in tmp_path.glob("*.json") if p.name[0].isdigit()]
    report = json.loads(report_path.read_text())
    assert report["own_broker"] and report["bootstrap"] != bootstrap
    assert report["producer"]["our_runs"][0]["topic_records"] == 5_000
    assert report["get_product"]["levels"][0]["requests_ok"] > 0
    assert report["creator_scoring"]["worker"]["complete"]
    assert report["ads_attribution"]["worker"]["complete"]
    assert report["order_saga"]["runs"]["sqlite"]["latency"]["reserved"] > 0

    # Nothing of theirs on the stack's broker.
    left = [t for t, bench in records_between(bootstrap, offsets_before, offsets_after) if bench]
    assert not left, f"bench records in the stack's topics: {sorted(set(left))} ({len(left)})"
    new_topics = topics_after - topics_before
    assert not [t for t in new_topics if "bench" in t], new_topics
    new_groups = groups_after - groups_before
    assert not [g for g in new_groups if is_bench_or_stack_group(g)], new_groups
    # Its broker is gone with its directory.
    assert not Path(report.get("run_dir", "/nonexistent")).exists()
