"""Creator-scoring worker: drain rate of pre-produced input, CPU per process, floors measured in
the same run, and score freshness at a steady rate.

Targets (design): >= 50,000 input events/s per worker, and >= 3x a Faust agent that does nothing
on the same machine; score freshness p99 <= 1 s at 10,000 events/s.

1. Pre-produce --events input records (60% content stats, 10% profiles, 30% paid orders, over
   --creators creators, uniform or Zipf-distributed with --zipf S) with a lean producer, before
   anything is timed; the groups of every consumer below start where these records start.
2. Client floor: a bare confluent-kafka `consume(num_messages=...)` loop that scans the
   CloudEvents headers and decodes each protobuf value (what any consumer must do at least).
3. Faust floor: a Faust agent that does nothing over the same records (bench/faust_floor.py).
4. The worker: creator-score in this process (Faust, memory tables) and its combiner process,
   started once the worker is ready; drain rate = inputs applied / time from the combiner's
   first output record to the last input applied. CPU seconds of the worker, the combiner and
   the broker over the drain, as µs per input event. The topics are the stack's own: records
   from any other producer are counted (`foreign_records`) and make the run suspect.
5. Freshness: --rate records/s for --seconds (a producer process), then the worker's freshness
   histogram (input event time -> the creator's new score computed) for that phase.

    uv run python bench/creator_scoring_bench.py [--events 200000] [--creators 2000] [--zipf 1.1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _broker import bench_bootstrap
from _common import (
    bucket_quantile,
    counter_total,
    histogram_buckets,
    machine_facts,
    proc_cpu_seconds,
)
from _stream import (
    OutputWatch,
    RawProducer,
    broker_pid,
    client_floor,
    faust_floor,
    roundtrip_floor,
    rss_mib,
)

from shopstream.commerce.v1 import order_events_pb2, order_pb2
from shopstream.common.v1 import money_pb2
from shopstream.social.v1 import creators_pb2 as social
from shopstream_creator_score.api.policy import POLICY
from shopstream_creator_score.settings import CreatorScoreSettings
from shopstream_creator_score.stream.topics import (
    CONTENT_TOPIC,
    INPUT_BATCHES_TOPIC,
    INPUT_TOPICS,
    ORDERS_TOPIC,
    PROFILES_TOPIC,
)
from shopstream_creator_score.wiring import wire
from shopstream_platform.child_process import SETTINGS_ENV, settings_json
from shopstream_platform.kafka.codec import type_name
from shopstream_platform.settings import GrpcSettings, KafkaSettings
from shopstream_platform.testing import hosted_service, start_group_at_end

INPUTS = "shopstream_creator_score_inputs_total"
SCORED = "shopstream_creator_score_creators_scored_total"
CREATORS = "shopstream_creator_score_creators"
FRESHNESS = "shopstream_creator_score_freshness_seconds"
BENCH_TOPICS = (PROFILES_TOPIC, CONTENT_TOPIC, ORDERS_TOPIC)
TARGET_EVENTS_PER_S = 50_000
TARGET_FAUST_MULTIPLE = 3.0
TARGET_FRESHNESS_P99_S = 1.0
DECODERS = {
    type_name(social.CreatorProfile): social.CreatorProfile.FromString,
    type_name(social.ContentStats): social.ContentStats.FromString,
    type_name(order_events_pb2.OrderPaid): order_events_pb2.OrderPaid.FromString,
}


class Mix:
    """The input mix, produced raw (prebuilt headers, one random id per record): the producer
    must not be what the bench measures."""

    def __init__(
        self,
        kafka: KafkaSettings,
        creators: int,
        zipf: float | None,
        run_id: str | None = None,
        views_from: int = 0,
    ) -> None:
        self.raw = RawProducer(kafka, "bench-creator-inputs")
        self.run_id = run_id or uuid.uuid4().hex[:6]
        self.creators = creators
        # Content counters are cumulative: a second producer continues above the first's.
        self.views: dict[int, int] = dict.fromkeys(range(creators), views_from)
        if zipf:
            weights = [1.0 / (k**zipf) for k in range(1, creators + 1)]
            total = 0.0
            self._cum: list[float] | None = []
            for w in weights:
                total += w
                self._cum.append(total)
        else:
            self._cum = None
        self._rng = random.Random(7)
        self._types = {
            PROFILES_TOPIC: type_name(social.CreatorProfile),
            CONTENT_TOPIC: type_name(social.ContentStats),
            ORDERS_TOPIC: type_name(order_events_pb2.OrderPaid),
        }

    def creator_of(self, i: int) -> int:
        if self._cum is None:
            return i % self.creators
        return self._rng.choices(range(self.creators), cum_weights=self._cum)[0]

    def send(self, i: int) -> None:
        c = self.creator_of(i)
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
            self._produce(PROFILES_TOPIC, creator, profile.SerializeToString(), now)
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
            self._produce(CONTENT_TOPIC, creator, stats.SerializeToString(), now)
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
            value = order_events_pb2.OrderPaid(order=order).SerializeToString()
            self._produce(ORDERS_TOPIC, order.order_id, value, now)

    def _produce(self, topic: str, key: str, value: bytes, now: datetime) -> None:
        self.raw.produce(topic, key, value, self._types[topic], now)

    def flush(self) -> None:
        self.raw.flush()


def applied(registry: Any) -> int:
    return int(counter_total(registry, INPUTS))


async def wait_applied(registry: Any, target: int, timeout_s: float) -> tuple[int, float | None]:
    """Applied count once `target` is reached (or at the timeout), and when the first of them
    was applied (perf_counter)."""
    deadline = time.monotonic() + timeout_s
    base = applied(registry)
    first = None
    while time.monotonic() < deadline:
        now = applied(registry)
        if first is None and now > base:
            first = time.perf_counter()
        if now >= target:
            break
        await asyncio.sleep(0.01)
    return applied(registry), first


async def run(args: argparse.Namespace) -> dict[str, Any]:
    kafka = KafkaSettings(bootstrap_servers=args.bootstrap)
    tmp = Path(tempfile.mkdtemp(prefix="creator-score-bench-"))
    tag = uuid.uuid4().hex[:8]
    settings = CreatorScoreSettings(
        database_url=f"sqlite+aiosqlite:///{tmp}/cs.db",
        store="memory",
        data_dir=tmp / "faust",
        faust_app_id=f"creator-score-bench-{tag}",
        kafka=kafka,
        grpc=GrpcSettings(port=0, shutdown_grace_s=1),
        metrics_port=0,
        log_level="WARNING",
    )
    client_group, faust_group = f"bench-client-floor-{tag}", f"bench-faust-floor-{tag}"
    # Every consumer starts where the pre-produced records will start.
    start_group_at_end(kafka, settings.faust_app_id, INPUT_TOPICS)
    for group in (client_group, faust_group):
        start_group_at_end(kafka, group, BENCH_TOPICS)
    mix = Mix(kafka, args.creators, args.zipf)
    result: dict[str, Any] = {
        "machine": machine_facts(),
        "loadavg_1m_before": round(os.getloadavg()[0], 2),
        "events": args.events,
        "creators": args.creators,
        "zipf": args.zipf,
    }

    # 1. Pre-produce.
    started = time.perf_counter()
    for i in range(args.events):
        mix.send(i)
    mix.flush()
    result["produce_events_per_s"] = round(args.events / (time.perf_counter() - started))

    # 2-3. Floors over the same records.
    result["client_floor"] = await asyncio.to_thread(
        client_floor, kafka, client_group, BENCH_TOPICS, DECODERS, args.events, args.timeout
    )
    if not args.skip_faust_floor:
        result["faust_floor"] = await asyncio.to_thread(
            faust_floor, args.bootstrap, faust_group, BENCH_TOPICS, args.events, args.timeout
        )

    # 4. The worker drains the same records. Its combiner is started here, once the worker is
    # ready, so that neither start-up is timed: the drain runs from the combiner's first
    # output record to the last input applied.
    settings.combiner.mode = "off"
    shutdown_started = None
    try:
        async with hosted_service(settings, wire, policy=POLICY) as hosted:
            registry = hosted.runtime.metrics.registry
            watch = OutputWatch(kafka, INPUT_BATCHES_TOPIC)
            # Popen returns at once (the child runs beside the loop).
            combiner = subprocess.Popen(  # noqa: ASYNC220
                [sys.executable, "-m", "shopstream_creator_score.stream.combiner"],
                env={**os.environ, SETTINGS_ENV: settings_json(settings)},
            )
            broker = broker_pid()
            pids = {"worker": os.getpid(), "combiner": combiner.pid, "broker": broker}
            first = await asyncio.to_thread(watch.wait_first, args.timeout)
            # From the first output on: the combiner's interpreter start and group join not counted.
            cpu0 = {k: proc_cpu_seconds(p) for k, p in pids.items() if p}
            done, _ = await wait_applied(registry, args.events, args.timeout)
            ended = time.perf_counter()
            cpu = {k: proc_cpu_seconds(p) - cpu0[k] for k, p in pids.items() if p}
            drain_s = ended - (first or ended)
            rate = round(done / drain_s) if drain_s > 0 else 0
            scored = counter_total(registry, SCORED)
            result["worker"] = {
                "applied": done,
                "creators_in_table": int(counter_total(registry, CREATORS)),
                # How much the windows compact: inputs applied per creator scored.
                "inputs_per_creator_scored": round(done / scored, 1) if scored else None,
                "complete": done >= args.events,
                "drain_s": round(drain_s, 3),
                "events_per_s": rate,
                # Includes start-up (group join, recovery) until the last input is applied.
                "cpu_s": {k: round(v, 2) for k, v in cpu.items()},
                "us_per_event_cpu": {k: round(v / max(done, 1) * 1e6, 1) for k, v in cpu.items()},
                "rss_mib": {
                    k: round(rss_mib(p), 1) for k, p in pids.items() if p and k != "broker"
                },
            }
            faust_rate = result.get("faust_floor", {}).get("events_per_s") or 0
            result["targets"] = {
                "events_per_s": {
                    "value": rate,
                    "target": TARGET_EVENTS_PER_S,
                    "met": rate >= TARGET_EVENTS_PER_S,
                },
                "x_faust_floor": {
                    "value": round(rate / faust_rate, 2) if faust_rate else None,
                    "target": TARGET_FAUST_MULTIPLE,
                    "met": bool(faust_rate) and rate / faust_rate >= TARGET_FAUST_MULTIPLE,
                },
                "x_client_floor": round(rate / result["client_floor"]["events_per_s"], 3)
                if result["client_floor"].get("events_per_s")
                else None,
            }

            # 5. Freshness at a steady rate, from a producer thread.
            if args.seconds > 0:
                before = histogram_buckets(registry, FRESHNESS)
                base = applied(registry)
                n = int(args.seconds * args.rate)

                # From another process, as the app's edge would: a producer thread here would
                # take the worker's interpreter lock.
                sender = await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "--bootstrap",
                    args.bootstrap,
                    "--creators",
                    str(args.creators),
                    *(["--zipf", str(args.zipf)] if args.zipf else []),
                    "--paced",
                    mix.run_id,
                    str(args.events),
                    str(n),
                    "--rate",
                    str(args.rate),
                )
                await sender.wait()
                done, _ = await wait_applied(registry, base + n, args.timeout)
                after = histogram_buckets(registry, FRESHNESS)
                p99 = bucket_quantile(after, 0.99, before)
                counts = [(le, a - b) for (le, a), (_, b) in zip(after, before, strict=True)]
                total = counts[-1][1] or 1
                result["freshness"] = {
                    "rate_per_s": args.rate,
                    "events": n,
                    "applied": done - base,
                    # Bucket upper bounds: p99 <= 1.0 means the 99th percentile is at most 1 s.
                    "p50_s": bucket_quantile(after, 0.5, before),
                    "p99_s": p99,
                    "share_within_1s": round(next(c for le, c in counts if le >= 1.0) / total, 4),
                }
                # The floor in the same run: bare produce -> consume at the same rate.
                result["freshness_floor"] = await asyncio.to_thread(
                    roundtrip_floor, kafka, args.rate, args.seconds
                )
                result["targets"]["freshness_p99_s"] = {
                    "value": p99,
                    "target": TARGET_FRESHNESS_P99_S,
                    "met": p99 is not None and p99 <= TARGET_FRESHNESS_P99_S,
                }
            combiner.terminate()
            combiner.wait(30)
            shutdown_started = time.perf_counter()
    except TimeoutError:
        # The service did not stop within the test harness's 60 s: the last commit's flush of
        # every changed state (Faust encodes and sends each) is what takes that long.
        result["shutdown_timed_out"] = True
    if shutdown_started is not None:
        result["shutdown_s"] = round(time.perf_counter() - shutdown_started, 1)
    result["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    return result


def paced(args: argparse.Namespace) -> None:
    """Produce inputs at a steady rate (the freshness phase's sender)."""
    run_id, start, count = args.paced[0], int(args.paced[1]), int(args.paced[2])
    kafka = KafkaSettings(bootstrap_servers=args.bootstrap)
    mix = Mix(kafka, args.creators, args.zipf, run_id, views_from=start * 100 // args.creators)
    t0 = time.perf_counter()
    tick = max(1, int(args.rate / 200))  # 5 ms slices
    for k in range(count):
        mix.send(start + k)
        if k % tick == tick - 1:
            mix.raw.producer.poll(0)
            time.sleep(max(0.0, t0 + (k + 1) / args.rate - time.perf_counter()))
    mix.flush()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--bootstrap", default=None, help="a broker to use (default: one of the bench's own)"
    )
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--creators", type=int, default=2_000)
    p.add_argument("--zipf", type=float, default=None, help="Zipf exponent of creator choice")
    p.add_argument("--rate", type=float, default=10_000.0, help="input records/s, freshness run")
    p.add_argument("--seconds", type=float, default=20.0, help="0 skips the freshness run")
    p.add_argument("--skip-faust-floor", action="store_true")
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument(
        "--paced",
        nargs=3,
        metavar=("RUN_ID", "START", "COUNT"),
        help="(internal) only produce COUNT inputs from index START at --rate, then exit",
    )
    args = p.parse_args()
    args.bootstrap = bench_bootstrap(args.bootstrap)
    if args.paced:
        paced(args)
        return
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
