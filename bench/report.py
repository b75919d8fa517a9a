"""BENCHMARKS.md: one row per design target, rendered from the bench results.

    uv run python bench/report.py [--results bench/results] [--out BENCHMARKS.md]

Every row takes the newest result that holds it: a run of `bench/run_all.py`
(`<results>/<UTC timestamp>.json`) or a bench's own file (`creator-scoring-*.json`,
`ads-attribution-*.json`, `creator-search-*.json`, `simulator-large-day-*.json`), so the stream
workers' rows come from their last runs until the next `make bench` measures them again. Each row
says where its number comes from, when, on what machine and under what load. A measured value is
set against a floor measured in the same run (the same process's result file) where the bench has
one; a row whose bench does not exist says "not measured" and why. The rows are also written as
JSON beside the Markdown (`--out` with `.json`), for tools.

Nothing here judges a test run: a missed target is a row that says NOT MET.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import REPO

RESULTS = Path(__file__).resolve().parent / "results"
RUN_FILE = re.compile(r"^(\d{8}T\d{4,6}Z)\.json$")
OWN_FILE = re.compile(r"^(?P<name>[a-z0-9-]+?)-(?P<stamp>\d{8}T\d{4,6}Z)\.json$")
# run_all.py key -> the name of the bench's own files.
OWN_NAMES = {
    "creator_search": "creator-search",
    "creator_scoring": "creator-scoring",
    "creator_scoring_100k_zipf": "creator-scoring-100k-zipf",
    "creator_scoring_1m": "creator-scoring-1m",
    "ads_attribution": "ads-attribution",
    "simulator_large_day": "simulator-large-day",
    "order_saga": "order-saga",
}
COMMANDS = {
    "producer": "uv run python bench/producer_bench.py -n 200000 -s 256 --repeats 3",
    "grpc_floor": "uv run python bench/grpc_floor.py -c 32 -d 15 --modes bare",
    "get_product": "uv run python bench/get_product_bench.py --concurrency 32,4 --duration 15",
    "creator_search": "uv run python bench/creator_search_bench.py -n 1000000",
    "creator_scoring": "uv run python bench/creator_scoring_bench.py",
    "creator_scoring_100k_zipf": "uv run python bench/creator_scoring_bench.py --creators 100000"
    " --zipf 1.1 --seconds 0 --skip-faust-floor",
    "creator_scoring_1m": "uv run python bench/creator_scoring_bench.py --creators 1000000"
    " --events 1000000 --seconds 0 --skip-faust-floor",
    "ads_attribution": "uv run python bench/ads_attribution_bench.py",
    "order_saga": "uv run python bench/order_saga_bench.py --dbs sqlite,postgres --seconds 10",
    "simulator_large_day": 'KEEP=1 make run SIM_OPTS="--day large --no-view --summary FILE"',
}


@dataclass
class Source:
    """One bench's result and where it came from."""

    key: str
    result: dict[str, Any]
    path: Path
    stamp: str
    run: dict[str, Any] = field(default_factory=dict)  # the run_all report holding it, if any

    @property
    def when(self) -> str:
        s = self.stamp
        return f"{s[0:4]}-{s[4:6]}-{s[6:8]} {s[9:11]}:{s[11:13]} UTC"

    @property
    def command(self) -> str:
        return str(self.run.get("commands", {}).get(self.key) or COMMANDS.get(self.key, ""))

    @property
    def machine(self) -> str:
        m = self.result.get("machine") or self.run.get("machine") or {}
        if not m:
            return "not recorded"
        return f"{m.get('nproc')} x {m.get('cpu_model')}, {m.get('mem_total_gib')} GiB"

    @property
    def load(self) -> str:
        """The 1-minute load average before and after the bench, as recorded."""
        r = self.result
        pair = (r.get("machine_load") or {}).get("loadavg_1m")
        if pair:
            return f"{pair[0]:.1f} -> {pair[1]:.1f}"
        if "loadavg_1m_before" in r:
            return f"{r['loadavg_1m_before']:.1f} -> {r.get('loadavg_1m_after', float('nan')):.1f}"
        if self.run.get("load_before"):
            before = self.run["load_before"]["loadavg_1m"]
            after = (self.run.get("load_after") or {}).get("loadavg_1m", float("nan"))
            return f"{before:.1f} -> {after:.1f} (whole run)"
        other = (r.get("machine_load") or {}).get("cores", {}).get("other")
        return f"other work {other:.2f} cores" if other is not None else "not recorded"


def _stamp_key(stamp: str) -> str:
    date, time_ = stamp.rstrip("Z").split("T")
    return date + time_.ljust(6, "0")


def find_sources(results: Path) -> dict[str, Source]:
    """The newest result of each bench among the run reports and the benches' own files."""
    found: dict[str, Source] = {}

    def offer(source: Source) -> None:
        held = found.get(source.key)
        if held is None or _stamp_key(source.stamp) > _stamp_key(held.stamp):
            found[source.key] = source

    by_own_name = {v: k for k, v in OWN_NAMES.items()}
    for path in sorted(results.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if m := RUN_FILE.match(path.name):
            for key, value in data.items():
                if isinstance(value, dict) and "failed" not in value and key in COMMANDS:
                    offer(Source(key, value, path, m[1], data))
        elif (m := OWN_FILE.match(path.name)) and m["name"] in by_own_name:
            offer(Source(by_own_name[m["name"]], data, path, m["stamp"]))
    return found


@dataclass
class Row:
    target: str  # the design's words
    measured: str
    floor: str  # what the measured value is set against, measured in the same run
    ratio: str
    wanted: str  # the target as a number
    met: str  # MET / NOT MET / NOT JUDGED / not measured
    when: str = ""
    machine: str = ""
    load: str = ""
    command: str = ""
    source: str = ""
    note: str = ""


def _fmt(x: float | None, unit: str = "", digits: int = 0) -> str:
    if x is None:
        return "-"
    return f"{x:,.{digits}f}{unit}"


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _row(source: Source | None, **kw: str) -> Row:
    row = Row(**kw)
    if source is not None and source.run.get("quick") and row.met in ("MET", "NOT MET"):
        row.met = "NOT JUDGED (quick run)"  # tiny sizes: a smoke run, not a measurement
    if source is not None:
        row.when, row.machine, row.load = source.when, source.machine, source.load
        row.command = source.command
        path = source.path
        row.source = str(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
    return row


def not_measured(target: str, wanted: str, why: str, command: str = "") -> Row:
    return Row(target, "not measured", "-", "-", wanted, "not measured", note=why, command=command)


def _verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def producer_rows(s: dict[str, Source]) -> list[Row]:
    target = "our producer path (protobuf + headers) >= 0.5 x ProducerPerformance records/s"
    p = s.get("producer")
    if p is None:
        return [not_measured(target, ">= 0.5", "no producer result", COMMANDS["producer"])]
    r = p.result
    ratio = r["ratio"]
    judged = r.get("judged", r["num_records"] >= 200_000)
    ok = judged and ratio >= 0.5 and r["delivery_errors"] == 0 and r["all_records_on_topics"]
    note = (
        f"{r['num_records']:,} records of {r['record_size']} B, acks=all, idempotent, median of "
        f"{r['repeats']}; {r['ours_cpu_us_per_record_median']} us CPU per record"
    )
    verdict = _verdict(ok) if judged else "NOT JUDGED (fewer than 200,000 records)"
    rows = [
        _row(
            p,
            target=target + ": publish() per record",
            measured=f"{r['ours_records_per_s']:,} rec/s",
            floor=f"ProducerPerformance {r['java_records_per_s']:,} rec/s",
            ratio=f"{ratio:.2f}",
            wanted=">= 0.5",
            met=verdict,
            note=note,
        )
    ]
    batch = r.get("batch_records_per_s")
    if batch:
        b_ratio = r["batch_ratio"]
        b_ok = (
            judged
            and b_ratio >= 0.5
            and r["batch_delivery_errors"] == 0
            and r["batch_all_records_on_topic"]
        )
        rows.append(
            _row(
                p,
                target=target + ": publish_batch() (outbox relay, simulator)",
                measured=f"{batch:,} rec/s",
                floor=f"ProducerPerformance {r['java_records_per_s']:,} rec/s",
                ratio=f"{b_ratio:.2f}",
                wanted=">= 0.5",
                met=_verdict(b_ok) if judged else "NOT JUDGED (fewer than 200,000 records)",
                note=f"{r['batch_size']:,} records per call, same records and settings; "
                f"{r['batch_cpu_us_per_record_median']} us CPU per record",
            )
        )
    return rows


def get_product_rows(s: dict[str, Source]) -> list[Row]:
    g, f = s.get("get_product"), s.get("grpc_floor")
    t_rps = "GetProduct >= 0.8 x a bare grpc.aio server's requests/s"
    t_p99 = "GetProduct p99 <= 5 ms"
    if g is None:
        return [
            not_measured(t_rps, ">= 0.8", "no GetProduct result", COMMANDS["get_product"]),
            not_measured(t_p99, "<= 5 ms", "no GetProduct result", COMMANDS["get_product"]),
        ]
    level = g.result["levels"][0]
    c = level["concurrency"]
    floor_run = None
    # The floor counts only when it was measured in the same run (the same report).
    if f is not None and f.path == g.path:
        floor_run = next((x for x in f.result["runs"] if x["mode"] == "bare"), None)
    rps, p99 = level["requests_per_s"], level["latency_ms"]["p99"]
    no_floor = "bare grpc.aio server not measured in this run"
    same_c = floor_run is not None and floor_run["concurrency"] == c
    floor_rps = floor_run["requests_per_s"] if floor_run else None
    floor_p99 = floor_run["latency_ms"]["p99"] if floor_run else None
    ratio = _ratio(rps, floor_rps)
    note = (
        f"{c} calls in flight (closed loop), Python load generator on the same 2 cores; "
        f"service CPU {level['server_cpu_us_per_request']} us/request"
    )
    if floor_run and not same_c:
        note += f"; floor at {floor_run['concurrency']} in flight (not the same concurrency)"
    rows = [
        _row(
            g,
            target=t_rps,
            measured=f"{rps:,.0f} req/s at C={c}",
            floor=f"bare grpc.aio {floor_rps:,.0f} req/s" if floor_rps else no_floor,
            ratio=_fmt(ratio, digits=2),
            wanted=">= 0.8",
            met=_verdict(ratio >= 0.8) if ratio is not None and same_c else "NOT JUDGED (no floor)",
            note=note,
        ),
        _row(
            g,
            target=t_p99,
            measured=f"p99 {p99:.1f} ms at C={c}",
            floor=f"bare grpc.aio p99 {floor_p99:.1f} ms" if floor_p99 else no_floor,
            ratio=_fmt(_ratio(p99, floor_p99), digits=2),
            wanted="<= 5 ms",
            met=_verdict(p99 <= 5.0),
            note="closed loop: at C in flight, latency = C / throughput (queueing); the issue's "
            "'at the rate where the floor's p99 is 2.5 ms' needs an open-loop generator (ghz), "
            "not built yet",
        ),
    ]
    return rows


def search_rows(s: dict[str, Source]) -> list[Row]:
    src = s.get("creator_search")
    t1 = "SearchCreators p99 <= 10 ms at 1,000,000 creators"
    t10 = "SearchCreators p99 <= 50 ms at 10,000,000 creators"
    rows = []
    if src is None or src.result.get("creators") != 1_000_000:
        why = "no result at 1,000,000 creators yet (make bench writes creator-search-*.json)"
        if src is not None:
            why = f"last run had {src.result.get('creators'):,} creators (quick run?)"
        rows.append(not_measured(t1, "<= 10 ms", why, COMMANDS["creator_search"]))
    else:
        r = src.result
        p99 = r["search_ms"]["p99"]
        floor = r.get("floor_scan_ms")
        rows.append(
            _row(
                src,
                target=t1,
                measured=f"p99 {p99:.1f} ms (top() p99 {r['top_ms']['p99']:.1f} ms)",
                floor=f"full numpy scan p50 {floor['p50']:.1f} ms"
                if floor
                else "none (in-process index, no I/O: an absolute target)",
                ratio=_fmt(_ratio(p99, floor["p50"]) if floor else None, digits=2),
                wanted="<= 10 ms",
                met=_verdict(p99 <= 10.0),
                note=f"{r['upserts_per_s']:,} upserts/s; index {r['index_rss_mib']} MiB",
            )
        )
    rows.append(
        not_measured(
            t10,
            "<= 50 ms",
            "not run at 10,000,000 creators: the bench builds its creators as Python objects "
            "first (about 10x the 1M run's memory and build time); not tried on this VM",
            "uv run python bench/creator_search_bench.py -n 10000000",
        )
    )
    return rows


def stream_rows(
    s: dict[str, Source], key: str, what: str, rate_key: str, fresh_key: str, fresh_words: str
) -> list[Row]:
    src = s.get(key)
    rows_t = (
        f"{what} >= 50,000 input events/s per worker",
        f"{what} >= 3 x a do-nothing Faust agent",
        f"{fresh_words} p99 <= 1 s at 10,000 events/s",
    )
    if src is None:
        return [not_measured(t, "-", f"no {key} result", COMMANDS[key]) for t in rows_t]
    r = src.result
    rate = r["worker"][rate_key]
    faust = (r.get("faust_floor") or {}).get("events_per_s")
    client = (r.get("client_floor") or {}).get("events_per_s")
    x_faust = _ratio(rate, faust)
    cpu = r["worker"]["us_per_event_cpu"]
    size = f"{r['events']:,} inputs, {r.get('creators') or r.get('buyers'):,} " + (
        "creators" if "creators" in r else "buyers"
    )
    fresh = r.get(fresh_key) or {}
    p99 = fresh.get("p99_s")
    rt = r.get("freshness_floor") or {}
    quick = r["events"] < 100_000
    return [
        _row(
            src,
            target=rows_t[0],
            measured=f"{rate:,} events/s",
            floor=f"Faust floor {faust:,}/s; bare client {client:,}/s"
            if faust
            else f"bare client {client:,}/s",
            ratio=_fmt(_ratio(rate, faust) or _ratio(rate, client), digits=2)
            + (" (of Faust)" if faust else " (of client)"),
            wanted=">= 50,000/s",
            met="NOT JUDGED (quick size)" if quick else _verdict(rate >= 50_000),
            note=f"{size}; CPU us/input worker {cpu.get('worker')} . combiner "
            f"{cpu.get('combiner')} . broker {cpu.get('broker')}",
        ),
        _row(
            src,
            target=rows_t[1],
            measured=f"{rate:,} events/s",
            floor=f"Faust floor {faust:,}/s" if faust else "Faust floor not measured in this run",
            ratio=_fmt(x_faust, digits=2),
            wanted=">= 3.0",
            met="NOT JUDGED (no floor)"
            if x_faust is None
            else ("NOT JUDGED (quick size)" if quick else _verdict(x_faust >= 3.0)),
            note=size,
        ),
        _row(
            src,
            target=rows_t[2],
            measured=f"p99 <= {p99} s (p50 <= {fresh.get('p50_s')} s)"
            if p99 is not None
            else "not measured in this run",
            floor=f"bare produce -> consume p99 {rt['p99_s']} s"
            if rt.get("p99_s") is not None
            else "none measured in this run (bare produce -> consume: creator bench only)",
            ratio=_fmt(_ratio(p99, rt.get("p99_s")), digits=1),
            wanted="<= 1 s",
            met="not measured"
            if p99 is None
            else ("NOT JUDGED (quick size)" if quick else _verdict(p99 <= 1.0)),
            note=f"at {fresh.get('rate_per_s', 0):,.0f} inputs/s; histogram bucket upper bounds"
            if fresh
            else "",
        ),
    ]


def scale_rows(s: dict[str, Source]) -> list[Row]:
    target = "creator-score cost per creator flat from 10k to 1M creators"
    small, big = s.get("creator_scoring"), s.get("creator_scoring_1m")
    if small is None or big is None:
        return [not_measured(target, "~1", "needs the 2k and 1M creator-scoring results")]

    def per_creator(src: Source) -> tuple[float, float]:
        """Worker CPU per input, and per creator scored (inputs per creator scored x that)."""
        w = src.result["worker"]
        per_input = w["us_per_event_cpu"]["worker"]
        return per_input, per_input * (w.get("inputs_per_creator_scored") or 1.0)

    a_in, a = per_creator(small)
    b_in, b = per_creator(big)
    mid = s.get("creator_scoring_100k_zipf")
    mid_note = ""
    if mid is not None:
        m_in, m = per_creator(mid)
        mid_note = f"100,000 (Zipf 1.1): {m:.0f} us per creator scored, {m_in} per input; "
    return [
        _row(
            big,
            target=target,
            measured=f"{b:.0f} us worker CPU per creator scored at {big.result['creators']:,}",
            floor=f"{a:.0f} us at {small.result['creators']:,} creators (run of {small.when})",
            ratio=f"{b / a:.2f}",
            wanted="<= 1.25 (flat)",
            # Not a like-for-like curve: the runs differ in inputs per creator (29 at 2k, 1 at
            # 1M), so neither per-input nor per-creator cost compares cleanly.
            met="NOT JUDGED (runs not alike; scale curve not built)",
            note=mid_note + f"per input {a_in} us at {small.result['creators']:,} and {b_in} us "
            "at 1,000,000 (at 1M each input is a new creator, so the input rate collapses: "
            "see the stream rows); the reference is another run, and the sizes are 2k / 100k / "
            "1M, not 10k; worker resident memory "
            f"{big.result['worker']['rss_mib'].get('worker'):,.0f} MiB at 1M (memory tables)",
        )
    ]


def day_rows(s: dict[str, Source]) -> list[Row]:
    target = "a simulated day of 1,000,000 events through the real services in <= 15 minutes"
    src = s.get("simulator_large_day")
    if src is None:
        return [not_measured(target, "<= 15 min", "no large-day summary")]
    r = src.result
    minutes = r["wall_s"] / 60
    return [
        _row(
            src,
            target=target,
            measured=f"{r['events']:,} events in {minutes:.1f} min (traffic {r['duration_s']:.0f} s)",
            floor="none (a whole-stack run, not part of make bench)",
            ratio="-",
            wanted="<= 15 min for 1,000,000",
            met=_verdict(r["events"] >= 1_000_000 and minutes <= 15),
            note="simulator wall time from set-up to verdicts; all four frauds caught",
        )
    ]


def saga_rows(s: dict[str, Source]) -> list[Row]:
    t_rate = "order saga >= 500 orders/s (PlaceOrder -> RESERVED -> paid)"
    t_p99 = "PlaceOrder -> RESERVED p99 <= 100 ms at 200 orders/s"
    src = s.get("order_saga")
    if src is None:
        why = "no order-saga result yet"
        return [
            not_measured(t_rate, ">= 500/s", why, COMMANDS["order_saga"]),
            not_measured(t_p99, "<= 100 ms", why, COMMANDS["order_saga"]),
        ]
    r = src.result
    floor = r.get("floor") or {}
    f_rate = floor.get("closed_loop_records_per_s")
    f_p99 = (floor.get("latency_ms") or {}).get("p99")
    rows = []
    for db, run in r.get("runs", {}).items():
        if "failed" in run:
            rows.append(
                _row(
                    src,
                    target=f"{t_rate} [{db}]",
                    measured="failed",
                    floor="-",
                    ratio="-",
                    wanted=">= 500/s",
                    met="FAILED",
                    note=run["failed"][:300],
                )
            )
            continue
        tp, lat = run["throughput"], run["latency"]
        rows.append(
            _row(
                src,
                target=f"{t_rate} [{db}]",
                measured=f"{tp['orders_per_s']:,} orders/s at C={tp['concurrency']}",
                floor=f"two bare Kafka hops {f_rate:,}/s at the same C" if f_rate else "-",
                ratio=_fmt(_ratio(tp["orders_per_s"], f_rate), digits=2),
                wanted=">= 500/s",
                met=_verdict(tp["orders_per_s"] >= 500 and tp["errors"] == 0),
                note=f"{tp['orders_paid']:,} orders paid in {tp['seconds']:g} s, errors "
                f"{tp['errors']}; CPU s commerce {tp['cpu_s'].get('commerce')}, catalog "
                f"{tp['cpu_s'].get('catalog')}",
            )
        )
        p99 = lat["place_to_reserved_ms"]["p99"]
        rows.append(
            _row(
                src,
                target=f"{t_p99} [{db}]",
                measured=f"p99 {p99:,.0f} ms (p50 {lat['place_to_reserved_ms']['p50']:,.0f}) "
                f"at {lat['rate_per_s']:g}/s; {lat['reserved']:,} of {lat['orders']:,} reserved",
                floor=f"two bare Kafka hops p99 {f_p99:,.0f} ms" if f_p99 else "-",
                ratio=_fmt(_ratio(p99, f_p99), digits=1),
                wanted="<= 100 ms",
                met=_verdict(p99 <= 100 and lat["errors"] == 0)
                if lat["rate_per_s"] >= 200
                else "NOT JUDGED (rate below 200/s)",
                note=f"errors {lat['errors']} (first: {lat['first_error'][:80]!r}); time to "
                "RESERVED from the OrderReserved event's ce_time (commerce's clock = the "
                "bench's); PlaceOrder's deadline is 10 s, the wait for RESERVED 120 s",
            )
        )
    return rows


ROWS: tuple[Callable[[dict[str, Source]], list[Row]], ...] = (
    producer_rows,
    lambda s: stream_rows(
        s, "creator_scoring", "creator scoring", "events_per_s", "freshness", "score freshness"
    ),
    lambda s: stream_rows(
        s, "ads_attribution", "ad attribution", "impressions_clicks_per_s", "lag", "attribution lag"
    ),
    get_product_rows,
    search_rows,
    saga_rows,
    day_rows,
    scale_rows,
)


def build_rows(results: Path) -> list[Row]:
    sources = find_sources(results)
    return [row for make in ROWS for row in make(sources)]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(rows: list[Row], results: Path) -> str:
    head = [
        "# Benchmarks",
        "",
        "Generated by `bench/report.py` from the results in "
        f"`{results.relative_to(REPO) if results.is_relative_to(REPO) else results}` (`make bench` "
        "runs every bench on a Kafka broker of its own, then this). One row per design target "
        "(the end of the design document): the value measured, the floor it is set against, "
        "measured in the same run, their ratio, the target, and whether it was met. Rows come "
        "from the newest result that holds them; the date, machine and 1-minute load average "
        "(before -> after) say which run. The machine is shared: a load average near or above "
        "2 (two cores) means other work competed and the numbers are low. Method and "
        "breakdowns: bench/README.md. A ratio whose floor ran on the same loaded machine moves "
        "with the load too (ProducerPerformance dropped from 65-104k to 34k records/s under a "
        "load average of 6-10), so compare rows taken at a low load.",
        "",
        "| target | measured | floor (same run) | ratio | wanted | result | when | load |",
        "|---|---|---|---|---|---|---|---|",
    ]
    body = [
        "| "
        + " | ".join(
            _cell(x)
            for x in (r.target, r.measured, r.floor, r.ratio, r.wanted, r.met, r.when, r.load)
        )
        + " |"
        for r in rows
    ]
    details = ["", "## Each row: how to reproduce it, and notes", ""]
    for i, r in enumerate(rows, 1):
        details.append(f"{i}. **{r.target}** — {r.met}.")
        if r.note:
            details.append(f"   {r.note}.")
        if r.machine:
            details.append(f"   Machine: {r.machine}. Result: `{r.source}`.")
        if r.command:
            details.append(f"   Reproduce: `{r.command}`")
    return "\n".join([*head, *body, *details, *LIMITS, ""])


# What limits the missed targets, from the profiles in bench/README.md (kept with the report so
# that a reader of a NOT MET row finds the next step).
LIMITS = [
    "",
    "## Where a target is missed: what limits it, and the next step",
    "",
    "- **Producer.** `publish()` per record: Python work per record (event id, traceparent, "
    "header list, a delivery report each) on one interpreter lock, 27-31 us of CPU per record "
    "(bench/README.md 'Where the producer's time goes'). `publish_batch()` (headers once per "
    "type and source, one random draw for ids and traceparents, one shared delivery callback) "
    "takes 11-15 us and meets the ratio; the outbox relay and the simulator's feeds use it. "
    "Next: move the remaining bulk publishers (the combiner's outputs) to it, and profile the "
    "batch path on an idle machine (it used under half a core at 37-41k records/s).",
    "- **GetProduct.** A bare grpc.aio server already costs 400-450 us of CPU per request here "
    "and the Python load generator shares the two cores (bench/README.md 'Where GetProduct's "
    "time goes'). Next: a compiled load generator (ghz) pinned apart from the server, a cached "
    "response protobuf, uvloop.",
    "- **Stream workers.** Faust's per-record path (60-95 us) and the applier's per-key Python "
    "work: bench/README.md 'Stream workers' lists what was fixed and what is open (the ads "
    "steady state spends ~95 us of worker CPU per record; at a million creators each input is "
    "a new creator at ~215 us).",
    "- **Order saga.** Kafka hops dominate, not the services' CPU: a diagnostic run "
    "(`order_saga_bench.py --dbs sqlite --rate 20 --seconds 10 --concurrency 16`, 13:28, load "
    "average 10-27) split PlaceOrder -> RESERVED (p50 3.1 s) into commerce's API 24 ms, its "
    "outbox relay 54 ms, Kafka + catalog's reservation 1.29 s, catalog's relay 211 ms, Kafka + "
    "commerce applying it 1.37 s (p50s, from the events' ce_time and the records' timestamps); "
    "the floor's two bare hops took 986 ms p50 in the same run, so each saga hop costs about "
    "2.6 bare hops here. The machine's load (other engineers' suites) made a bare hop ~0.5 s; "
    "next: the same split on an idle machine, then the consumers' per-record transaction "
    "(one SQLite commit per record) and the relays' 50 ms poll.",
    "- **10M-creator search.** Not run yet (see its row).",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS, help="%(default)s")
    parser.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md", help="%(default)s")
    args = parser.parse_args(argv)
    rows = build_rows(args.results)
    args.out.write_text(render(rows, args.results.resolve()))
    args.out.with_suffix(".json").write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    print(f"report: {args.out} ({len(rows)} rows) and {args.out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
