"""`make bench`: run every bench on a Kafka broker of its own, print a table, and keep the results
as JSON in bench/results/<UTC timestamp>.json together with the facts of the machine
(bench/report.py renders BENCHMARKS.md from them).

    uv run python bench/run_all.py [--quick] [--only producer,get_product] [--strict]

The broker is started here (bench/_broker.py) and removed at the end, so the local stack's
topics and consumer groups are never touched. Each benchmark runs as its own process (so its
CPU accounting is its own) with a time limit.
Exit status: 0 when the benchmarks ran (targets met or not; the table says which), 1 when one
failed to run, and with --strict also 1 when a target was missed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _broker import RUN_DIR_ENV, bench_bootstrap
from _common import (
    REPO,
    ForeignLoadMonitor,
    machine_facts,
)

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
BUSY_WARNING = 0.15  # share of all CPUs busy before we start that makes the numbers suspect
FOREIGN_WARNING_CORES = 0.2  # average cores used by unrelated processes during a benchmark


def cpu_busy_share(seconds: float = 2.0) -> float:
    """Share of all CPUs busy (anything but idle/iowait) over a short sample from /proc/stat."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        idle = values[3] + values[4]
        return sum(values[:8]), idle

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    total = total1 - total0
    return 1.0 - (idle1 - idle0) / total if total else 0.0


def load_snapshot() -> dict[str, Any]:
    return {
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "cpu_busy_share": round(cpu_busy_share(), 3),
    }


def run_bench(script: str, args: list[str], timeout_s: float) -> dict[str, Any]:
    """One bench in a process of its own (on the broker exported by bench_bootstrap)."""
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="shopstream-bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, str(BENCH / script), *args, "--json", str(out)]
        print(f"\n$ python bench/{script} {' '.join(args)}", flush=True)
        started = time.monotonic()
        with ForeignLoadMonitor() as monitor:
            try:
                proc = subprocess.run(cmd, cwd=REPO, timeout=timeout_s, check=False)
            except subprocess.TimeoutExpired:
                return {"failed": f"{script} did not finish within {timeout_s:.0f} s"}
        if proc.returncode != 0 or not out.exists():
            return {"failed": f"{script} exited with {proc.returncode}"}
        result: dict[str, Any] = json.loads(out.read_text())
        result["wall_s"] = round(time.monotonic() - started, 1)
        result["machine_load"] = monitor.summary()
        result["machine_load"]["loadavg_1m"] = [load_before, round(os.getloadavg()[0], 2)]
        other = result["machine_load"]["cores"]["other"]
        if other > FOREIGN_WARNING_CORES:
            print(
                f"bench: WARNING: other work used {other:.2f} cores on average during "
                f"{script}; its numbers are low. Top: {result['machine_load']['other_top'][:1]}",
                file=sys.stderr,
            )
        return result


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def print_table(report: dict[str, Any]) -> None:
    m = report["machine"]
    print(
        f"\nshopstream bench  {report['timestamp']}  {m['nproc']} x {m['cpu_model']}, "
        f"{m['mem_total_gib']} GiB, Python {m['python']}, Kafka {m['kafka']}"
    )
    rows: list[tuple[str, str, str, str]] = []
    p = report.get("producer")
    if p and "failed" not in p:
        rows.append(
            (
                "Producer: ours / ProducerPerformance",
                f"{p['ours_records_per_s']:,} / {p['java_records_per_s']:,} rec/s = {p['ratio']:.2f}",
                ">= 0.50",
                verdict(p["ratio"] >= 0.5) if p.get("judged", True) else "NOT JUDGED (N small)",
            )
        )
        rows.append(
            (
                "Producer: delivery errors, all on topic",
                f"{p['delivery_errors']}, {'yes' if p['all_records_on_topics'] else 'NO'}",
                "0, yes",
                verdict(p["delivery_errors"] == 0 and p["all_records_on_topics"]),
            )
        )
        runs = p["our_runs"]
        cpu = sorted(r["cpu_s"] for r in runs)[len(runs) // 2]
        rows.append(
            (
                "  our producer process CPU (median run)",
                f"{cpu:.2f} s = {p['ours_cpu_us_per_record_median']:.1f} us/record",
                "",
                "",
            )
        )
        rows.append(
            (
                "  records",
                f"{p['num_records']:,} x {p['record_size']} B value, {p['repeats']} runs, median",
                "",
                "",
            )
        )
    elif p:
        rows.append(("Producer", p["failed"], "", "FAILED"))
    g = report.get("get_product")
    if g and "failed" not in g:
        for i, level in enumerate(g["levels"]):
            c = level["concurrency"]
            lat = level["latency_ms"]
            headline = i == 0
            rows.append(
                (
                    f"GetProduct req/s (C={c})",
                    f"{level['requests_per_s']:,.0f}",
                    ">= 5,000" if headline else "",
                    verdict(level["requests_per_s"] >= 5_000) if headline else "",
                )
            )
            rows.append(
                (
                    f"GetProduct latency (C={c})",
                    f"p50 {lat['p50']:.2f}  p95 {lat['p95']:.2f}  p99 {lat['p99']:.2f}  "
                    f"max {lat['max']:.1f} ms",
                    "p99 <= 5 ms" if headline else "",
                    verdict(lat["p99"] <= 5.0) if headline else "",
                )
            )
            hist = level["server_histogram"]
            rows.append(
                (
                    f"  CPU service / client (C={c})",
                    f"{level['server_cpu_cores']:.2f} / {level['client_cpu_cores']:.2f} cores, "
                    f"{level['server_cpu_us_per_request']} us/req in service; "
                    f"in-handler p99 <= {hist.get('p99_le_ms', float('nan')):g} ms",
                    "",
                    "",
                )
            )
            rows.append(
                (f"  errors (C={c})", str(level["errors"]), "0", verdict(level["errors"] == 0))
            )
        rows.append(
            (
                "GetProduct service SIGTERM exit",
                str(g["exit_code"]),
                "0",
                verdict(g["exit_code"] == 0),
            )
        )
    elif g:
        rows.append(("GetProduct", g["failed"], "", "FAILED"))
    widths = [max(len(r[i]) for r in [*rows, ("", "", "", "")]) for i in range(4)]
    header = ("check", "measured", "target", "result")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    print(
        "note: load generator, service, broker and Java tool all share this machine's "
        f"{m['nproc']} cores."
    )
    before = report["load_before"]
    print(
        f"machine load: {before['cpu_busy_share'] * 100:.0f}% CPU busy before start; "
        "average cores used during each benchmark by ours / Kafka brokers / other work:"
    )
    for key in ("producer", "get_product"):
        load = (report.get(key) or {}).get("machine_load")
        if load:
            c = load["cores"]
            print(
                f"  {key:12s} {c['ours']:.2f} / {c['kafka_brokers']:.2f} / {c['other']:.2f}"
                + (
                    "   <- other work competed: numbers are low"
                    if c["other"] > FOREIGN_WARNING_CORES
                    else ""
                )
            )


# Each bench: (name, script, args for `make bench`, args for `make bench-quick`, time limit s).
# The stream workers' and the search index's rows are also kept as files of their own
# (bench/results/<name>-<timestamp>.json), as before.
BENCHES: tuple[tuple[str, str, list[str], list[str] | None, float], ...] = (
    (
        "producer",
        "producer_bench.py",
        ["-n", "200000", "-s", "256", "--repeats", "3"],
        ["-n", "5000", "-s", "256", "--repeats", "1"],
        1_200,
    ),
    (
        "grpc_floor",
        "grpc_floor.py",
        ["-c", "32", "-d", "15", "--warmup", "3", "--modes", "bare"],
        ["-c", "4", "-d", "1", "--warmup", "0.5", "--modes", "bare"],
        300,
    ),
    (
        "get_product",
        "get_product_bench.py",
        ["--concurrency", "32,4", "--duration", "15", "--warmup", "3"],
        ["--concurrency", "4", "--duration", "1", "--warmup", "0.5", "--products", "5"],
        600,
    ),
    (
        "creator_search",
        "creator_search_bench.py",
        ["-n", "1000000"],
        ["-n", "10000", "--searches", "100", "--tops", "100", "--upserts", "1000"],
        1_200,
    ),
    (
        "creator_scoring",
        "creator_scoring_bench.py",
        [],
        ["--events", "3000", "--seconds", "1", "--rate", "1000", "--skip-faust-floor"],
        1_200,
    ),
    (
        "creator_scoring_100k_zipf",
        "creator_scoring_bench.py",
        ["--creators", "100000", "--zipf", "1.1", "--seconds", "0", "--skip-faust-floor"],
        None,
        1_200,
    ),
    (
        "creator_scoring_1m",
        "creator_scoring_bench.py",
        ["--creators", "1000000", "--events", "1000000", "--seconds", "0", "--skip-faust-floor"],
        None,
        2_400,
    ),
    (
        "ads_attribution",
        "ads_attribution_bench.py",
        [],
        [
            "--events",
            "3000",
            "--campaigns",
            "2",
            "--seconds",
            "1",
            "--rate",
            "1000",
            "--skip-faust-floor",
        ],
        1_200,
    ),
    (
        "order_saga",
        "order_saga_bench.py",
        ["--dbs", "sqlite,postgres", "--seconds", "10"],
        [
            "--dbs",
            "sqlite",
            "--seconds",
            "1",
            "--rate",
            "20",
            "--concurrency",
            "4",
            "--products",
            "1",
        ],
        1_200,
    ),
)
# Files of their own, named as before `make bench` ran them from run_all.py.
OWN_FILES = {
    "creator_search": "creator-search",
    "creator_scoring": "creator-scoring",
    "creator_scoring_100k_zipf": "creator-scoring-100k-zipf",
    "creator_scoring_1m": "creator-scoring-1m",
    "ads_attribution": "ads-attribution",
    "order_saga": "order-saga",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--bootstrap", default=None, help="a broker to use (default: one of the bench's own)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, every bench once (make bench-quick)"
    )
    parser.add_argument(
        "--only", default="", help="comma list of: " + ", ".join(b[0] for b in BENCHES)
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    unknown = only - {b[0] for b in BENCHES}
    if unknown:
        parser.error(f"unknown bench {sorted(unknown)}")
    bootstrap = args.bootstrap = bench_bootstrap(args.bootstrap)

    from shopstream_platform.kafka.admin import probe_kafka
    from shopstream_platform.settings import KafkaSettings

    if not probe_kafka(KafkaSettings(bootstrap_servers=bootstrap), timeout_s=5):
        print(f"bench: no Kafka broker answers at {bootstrap}", file=sys.stderr)
        return 1

    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    report: dict[str, Any] = {
        "timestamp": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "quick": args.quick,
        "bootstrap": bootstrap,
        "own_broker": os.environ.get(RUN_DIR_ENV) is not None,
        "run_dir": os.environ.get(RUN_DIR_ENV),
        "machine": machine_facts(),
        "load_before": load_snapshot(),
        "commands": {},
    }
    busy = report["load_before"]["cpu_busy_share"]
    if busy > BUSY_WARNING:
        print(
            f"bench: WARNING: the machine is already {busy * 100:.0f}% busy before the benchmarks "
            "start; other work competes for the cores and the numbers will be low.",
            file=sys.stderr,
        )
    args.results_dir.mkdir(parents=True, exist_ok=True)
    for name, script, full, quick, limit in BENCHES:
        if only and name not in only:
            continue
        bench_args = quick if args.quick else full
        if bench_args is None:
            continue  # a scale variant: the quick run has one size of each bench
        report["commands"][name] = f"uv run python bench/{script} {' '.join(bench_args)}".strip()
        result = run_bench(script, bench_args, limit / (4 if args.quick else 1))
        report[name] = result
        if name in OWN_FILES and "failed" not in result:
            own = args.results_dir / f"{OWN_FILES[name]}-{stamp}.json"
            own.write_text(json.dumps(result, indent=2) + "\n")
    report["load_after"] = load_snapshot()

    path = args.results_dir / f"{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"results: {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")

    benches = [report[b[0]] for b in BENCHES if b[0] in report]
    if any("failed" in b for b in benches):
        return 1
    if args.strict and not all(b.get("target_met", True) for b in benches):
        return 1
    return 0


if __name__ == "__main__":
    os.chdir(REPO)
    sys.exit(main())
