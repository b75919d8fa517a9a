"""Creator-scoring worker throughput and score freshness of one creator-score process.

Targets (design): creator scoring >= 50,000 input events/s per worker; score freshness p99
<= 1 s at 10,000 events/s.

Runs creator-score in this process (gRPC, SQLite in a temp dir, Faust with memory tables, the
Kafka broker given by --bootstrap; its worker group starts at the topics' current end), then:
1. throughput: produces --events input records as fast as the producer goes, for --creators
   creators: 60% content stats, 10% profiles, 30% paid orders (each re-keyed to one sale) and
   times until the worker has applied every one (events/s = applied inputs / that time,
   producing included, so a lower bound when producing is slower than processing);
2. freshness: --rate records/s of the same mix for --seconds, then reads the worker's own
   freshness histogram (input event time -> score computed) for that phase.

    uv run python bench/creator_scoring_bench.py [--bootstrap 127.0.0.1:9092] [--events 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    bucket_quantile,
    counter_total,
    default_bootstrap,
    histogram_buckets,
    machine_facts,
    require_loopback,
)

from shopstream.commerce.v1 import order_events_pb2, order_pb2  # noqa: E402
from shopstream.common.v1 import money_pb2  # noqa: E402
from shopstream.social.v1 import creators_pb2 as social  # noqa: E402
from shopstream_creator_score.api.policy import POLICY  # noqa: E402
from shopstream_creator_score.settings import CreatorScoreSettings  # noqa: E402
from shopstream_creator_score.stream.agents import INPUT_TOPICS  # noqa: E402
from shopstream_creator_score.wiring import wire  # noqa: E402
from shopstream_platform.kafka.producer import EventProducer  # noqa: E402
from shopstream_platform.settings import GrpcSettings, KafkaSettings  # noqa: E402
from shopstream_platform.testing import hosted_service, start_group_at_end  # noqa: E402

INPUTS = "shopstream_creator_score_inputs_total"
FRESHNESS = "shopstream_creator_score_freshness_seconds"


def applied(registry: Any) -> int:
    return int(counter_total(registry, INPUTS))


class Mix:
    """The input mix: content stats, profiles and paid orders for a set of creators."""

    def __init__(self, producer: EventProducer, run_id: str, creators: int) -> None:
        self.producer = producer
        self.run_id = run_id
        self.creators = creators
        self.views: dict[int, int] = {}

    def send(self, i: int) -> None:
        c = i % self.creators
        creator = f"bc{self.run_id}-{c}"
        now = datetime.now(UTC)
        kind = i % 10
        if kind == 0:
            profile = social.CreatorProfile(
                creator_id=creator,
                display_name=f"Bench {c}",
                followers=1_000 + i,
                declared_categories=["beauty"],
            )
            profile.at.FromDatetime(now)
            self.producer.publish("social.creator-profiles.v1", creator, profile)
        elif kind < 7:
            views = self.views[c] = self.views.get(c, 0) + 100
            stats = social.ContentStats(
                content_id=f"{creator}-v{(i // self.creators) % 5}",
                creator_id=creator,
                kind=social.CONTENT_KIND_VIDEO,
                views=views,
                likes=views // 20,
            )
            stats.at.FromDatetime(now)
            self.producer.publish("social.content-stats.v1", creator, stats)
        else:
            order = order_pb2.Order(order_id=f"bo{self.run_id}-{i}", buyer_id="b")
            order.total.CopyFrom(money_pb2.Money(amount_minor=2_500, currency="USD"))
            order.updated_at.FromDatetime(now)
            order.lines.add(
                line_id="1",
                category_id="beauty",
                line_total=money_pb2.Money(amount_minor=2_500, currency="USD"),
                attribution=order_pb2.AttributionContext(creator_id=creator),
            )
            self.producer.publish(
                "commerce.orders.v1", order.order_id, order_events_pb2.OrderPaid(order=order)
            )


async def wait_applied(registry: Any, target: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if applied(registry) >= target:
            break
        await asyncio.sleep(0.05)
    return applied(registry)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    kafka = KafkaSettings(bootstrap_servers=args.bootstrap)
    tmp = Path(tempfile.mkdtemp(prefix="creator-score-bench-"))
    settings = CreatorScoreSettings(
        database_url=f"sqlite+aiosqlite:///{tmp}/cs.db",
        store="memory",
        data_dir=tmp / "faust",
        faust_app_id=f"creator-score-bench-{uuid.uuid4().hex[:8]}",
        kafka=kafka,
        grpc=GrpcSettings(port=0, shutdown_grace_s=1),
        metrics_port=0,
        log_level="WARNING",
    )
    start_group_at_end(kafka, settings.faust_app_id, INPUT_TOPICS)
    producer = EventProducer(kafka, "shopstream/bench-social")
    mix = Mix(producer, uuid.uuid4().hex[:6], args.creators)
    result: dict[str, Any] = {
        "machine": machine_facts(),
        "events": args.events,
        "creators": args.creators,
    }
    async with hosted_service(settings, wire, policy=POLICY) as hosted:
        registry = hosted.runtime.metrics.registry
        # Warm-up: the worker has joined its group and applies inputs.
        mix.send(0)
        await wait_applied(registry, 1, 120)
        base = applied(registry)

        # 1. Throughput.
        started = time.perf_counter()
        for i in range(1, args.events + 1):
            mix.send(i)
            if i % 5_000 == 0:
                await asyncio.sleep(0)
        await asyncio.to_thread(producer.flush, 60)
        produced_s = time.perf_counter() - started
        done = await wait_applied(registry, base + args.events, args.timeout)
        elapsed = time.perf_counter() - started
        result.update(
            produce_s=round(produced_s, 2),
            processed_s=round(elapsed, 2),
            applied=done - base,
            complete=done - base >= args.events,
            events_per_s=round((done - base) / elapsed),
        )

        # 2. Freshness at a steady rate.
        before = histogram_buckets(registry, FRESHNESS)
        base = applied(registry)
        n = int(args.seconds * args.rate)
        t0 = time.perf_counter()
        tick = max(1, int(args.rate / 100))  # send in 10 ms slices
        for k in range(n):
            mix.send(args.events + 1 + k)
            if k % tick == tick - 1:
                await asyncio.sleep(max(0.0, t0 + (k + 1) / args.rate - time.perf_counter()))
        done = await wait_applied(registry, base + n, args.timeout)
        after = histogram_buckets(registry, FRESHNESS)
        result.update(
            freshness_rate_per_s=args.rate,
            freshness_events=n,
            freshness_applied=done - base,
            freshness_p50_s=bucket_quantile(after, 0.5, before),
            freshness_p99_s=bucket_quantile(after, 0.99, before),
        )
    producer.close()
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bootstrap", default=default_bootstrap())
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--creators", type=int, default=2_000)
    p.add_argument("--rate", type=float, default=1_000.0, help="input records/s, freshness run")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    require_loopback(args.bootstrap)
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
