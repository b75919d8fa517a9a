"""`shopstream-sim`: run a simulated social-commerce day against the local stack."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from grpc import aio
from rich.console import Console

from shopstream_cli.reconcile import Report, Scope, reconcile
from shopstream_cli.reconcile.command import show as show_reconcile
from shopstream_platform.settings import AuthSettings, KafkaSettings, load_settings
from shopstream_simulator.config import SimConfig, SimulatorSettings, Targets, kafka_override
from shopstream_simulator.dashboard import line_view, live_view, money
from shopstream_simulator.engine import ServicesUnreachable, simulate
from shopstream_simulator.ledger import Summary
from shopstream_simulator.plan import DAYS, LARGE_DAY
from shopstream_simulator.world import WorldSize

EXIT_OK, EXIT_FAILED, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 130
# `--day large` unless given otherwise: ~2,000 records and orders/s for 10 minutes (1.2M planned),
# with twice the creators (more videos, so more counters to report).
LARGE_PRESET: dict[str, Any] = {
    "unit": "events",
    "rate": 2_000.0,
    "duration": 600.0,
    "creators": 240,
}


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="shopstream-sim",
        description="Play a seeded, reproducible social-commerce day against the shopstream "
        "services: sellers, creators, buyers, ads, orders, refunds and a few fraudsters.",
    )
    defaults = SimConfig()
    size = WorldSize()
    large = LARGE_PRESET
    p.add_argument(
        "--day",
        choices=sorted(DAYS),
        default="normal",
        help="normal, or large: a day of mostly views (ad visits scroll a feed of 20 pages "
        "served from one auction, videos report their counters every second, ~3%% of visits "
        f"buy); large defaults to --unit events --rate {large['rate']:g} "
        f"--duration {large['duration']:g} --creators {large['creators']}: over a million "
        "Kafka records and orders (default %(default)s)",
    )
    p.add_argument(
        "--rate",
        type=_positive_float,
        default=None,
        help=f"orders per second (or events per second with --unit events); default "
        f"{defaults.rate:g}",
    )
    p.add_argument(
        "--unit",
        choices=("orders", "events"),
        default=None,
        help=f"what --rate counts: orders, or Kafka records + orders (default {defaults.unit})",
    )
    p.add_argument(
        "--duration",
        type=_positive_float,
        default=None,
        help=f"seconds of traffic after the world is set up (default {defaults.duration_s:g})",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=defaults.seed,
        help="the world and its story (default %(default)s)",
    )
    p.add_argument(
        "--run-id",
        default=None,
        help="prefix of every id created (default: s<seed>, or s<seed>-N if taken)",
    )
    p.add_argument(
        "--summary",
        type=Path,
        default=None,
        help="write the run's ledger as JSON here (and reconcile's report beside it, "
        "<name>.reconcile.json)",
    )
    p.add_argument(
        "--no-view",
        action="store_true",
        help="print a one-line progress every few seconds instead of the live view",
    )
    p.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="NAME=HOST:PORT",
        help="where a service is: catalog, commerce, ads, creator-score (gRPC), "
        "<service>-metrics, kafka; repeatable",
    )
    p.add_argument("--sellers", type=int, default=size.sellers)
    p.add_argument("--creators", type=int, default=None, help=f"default {size.creators}")
    p.add_argument(
        "--buyers",
        type=int,
        default=None,
        help="default: max(600, 300 x orders/s) so no buyer clicks like a bot",
    )
    p.add_argument(
        "--concurrency",
        type=_positive_int,
        default=defaults.concurrency,
        help="gRPC calls in flight at most (default %(default)s)",
    )
    p.add_argument(
        "--drain",
        type=float,
        default=defaults.drain_s,
        help="seconds open orders may take to finish after the traffic (default %(default)s)",
    )
    p.add_argument(
        "--no-reconcile",
        action="store_true",
        help="skip the end-of-day recount of the run's topics against the services",
    )
    p.add_argument(
        "--verify",
        type=float,
        default=defaults.verify_s,
        help="seconds to wait for the services to catch the fraud (default %(default)s)",
    )
    return p


def config_from(args: argparse.Namespace, settings: SimulatorSettings) -> SimConfig:
    targets = Targets()
    for spec in args.target:
        targets = targets.with_override(spec)
    kafka = settings.kafka
    if (bootstrap := kafka_override(args.target)) is not None:
        kafka = kafka.model_copy(update={"bootstrap_servers": bootstrap})
    defaults = SimConfig()
    day = DAYS[args.day]
    preset: dict[str, Any] = LARGE_PRESET if day is LARGE_DAY else {}
    rate = args.rate if args.rate is not None else preset.get("rate", defaults.rate)
    unit = args.unit if args.unit is not None else preset.get("unit", defaults.unit)
    duration = (
        args.duration if args.duration is not None else preset.get("duration", defaults.duration_s)
    )
    creators = (
        args.creators if args.creators is not None else preset.get("creators", WorldSize().creators)
    )
    orders_per_s = rate if unit == "orders" else rate / 10
    buyers = args.buyers if args.buyers is not None else max(600, int(300 * orders_per_s))
    world = dataclasses.replace(WorldSize(), sellers=args.sellers, creators=creators, buyers=buyers)
    return SimConfig(
        seed=args.seed,
        rate=rate,
        unit=unit,
        duration_s=duration,
        day=day,
        run_id=args.run_id,
        world=world,
        targets=targets,
        kafka=kafka,
        auth=settings.auth,
        concurrency=args.concurrency,
        drain_s=max(0.0, args.drain),
        verify_s=max(0.0, args.verify),
        ship_within_s=_ship_within_s(defaults.ship_within_s),
    )


def _ship_within_s(default: float) -> float:
    """Commerce's ship-by window from the variable commerce reads (`make run` exports it), as
    Kafka and the JWT secret are: the late shipper needs it, and no API shows an order's ship-by
    before its package ships."""
    value = os.environ.get(SHIP_WITHIN_ENV, "")
    try:
        return float(value) if value else default
    except ValueError:
        return default


def fulfilment_line(f: dict[str, int]) -> str:
    """Packages by how they shipped and how they ended; the platform's centres."""
    on_time, late, lost = (
        f.get("delivered_on_time", 0),
        f.get("delivered_late", 0),
        f.get("lost", 0),
    )
    ended = on_time + late + lost
    rate = f"{100 * on_time / ended:.0f}% on time" if ended else "none ended yet"
    return (
        f"packages {f.get('packages', 0)} (split orders {f.get('orders_split', 0)}): shipped by "
        f"the platform {f.get('shipped_by_platform', 0)}, with its carrier "
        f"{f.get('shipped_sandbox', 0)}, own carriers {f.get('shipped_own_carrier', 0)}; "
        f"delivered on time {on_time}, late {late}, lost {lost} ({rate}); inbound "
        f"{f.get('inbound_received_units', 0):,} of {f.get('inbound_announced_units', 0):,} "
        f"units received; returns restocked {f.get('returns_restocked', 0)}, written off "
        f"{f.get('returns_written_off', 0)}; fulfilment fees "
        f"{f.get('platform_fees_minor', 0):,} minor units; storage fees "
        f"{f.get('storage_fees_minor', 0):,} in {f.get('storage_charges', 0)} charges"
    )


def report(summary: Summary, console: Console) -> None:
    console.print(
        f"\n[bold]run {summary.run_id}[/] (seed {summary.seed}) "
        f"{'[yellow]interrupted[/]' if summary.interrupted else 'finished'} after "
        f"{summary.elapsed_s:,.0f}s (traffic and drain)"
    )
    o = summary.orders
    console.print(
        f"orders placed {o.get('placed', 0)}, paid {o.get('paid', 0)}, refunds approved "
        f"{o.get('refunds_approved', 0)}, rejected {sum(summary.rejections.values())}"
    )
    for currency, m in summary.money.items():
        console.print(
            f"{currency}: paid {money(m['paid_minor'], currency)} - refunded "
            f"{money(m['refunded_minor'], currency)} = {money(m['net_minor'], currency)}"
        )
    t = summary.traffic
    console.print(
        f"sent impressions {t.get('impressions', 0)}, clicks {t.get('clicks', 0)}, "
        f"bot clicks {t.get('bot_clicks', 0)}, profiles {t.get('profiles', 0)}, "
        f"content stats {t.get('content_stats', 0)}, live stats {t.get('live_stats', 0)}"
    )
    if summary.fulfilment:
        console.print(fulfilment_line(summary.fulfilment))
    console.print(
        f"{summary.day} day: {summary.events:,} events (Kafka records acknowledged + orders "
        f"placed) in {summary.wall_s:,.0f}s from connect to verdicts"
    )
    lag = summary.consumer_lag
    if lag.get("max"):
        console.print(
            "consumer lag max (records, when): "
            + ", ".join(
                f"{s} {n:,} at {lag['max_at_s'].get(s, 0):,.0f}s"
                for s, n in sorted(lag["max"].items())
            )
            + f"; at the end: {', '.join(f'{s} {n:,}' for s, n in sorted(lag['last'].items()))}"
        )
    if lag.get("events_behind_max"):
        console.print(
            "events not yet counted by the stream workers, max while the traffic ran: "
            + ", ".join(f"{s} {n:,}" for s, n in sorted(lag["events_behind_max"].items()))
            + "; at the end: "
            + ", ".join(f"{s} {n:,}" for s, n in sorted(lag["events_behind_last"].items()))
        )
    rec = summary.reconciled
    if rec:
        pairs = ", ".join(
            f"{k} {v['simulator']:,} vs {v['service'] if v['service'] is None else format(v['service'], ',')}"
            for k, v in {**rec, **rec.get("info", {})}.items()
            if isinstance(v, dict) and "simulator" in v
        )
        mark = "[green]exact[/]" if rec.get("exact") else "[red]NOT exact[/]"
        console.print(f"  ledger vs services: {mark} ({pairs})")
    for fraud, verdict in summary.caught.items():
        caught = verdict.get("caught")
        mark = (
            "[green]caught[/]"
            if caught
            else "[red]NOT caught[/]"
            if caught is False
            else "[dim]n/a[/]"
        )
        detail = verdict.get("why", "")
        if "bot_clicks" in verdict:
            flagged = verdict.get("flagged_by_reason", {}).get("device_burst", 0)
            detail = f"{flagged:,.0f} device-burst flags for {verdict['bot_clicks']} bot clicks"
        if "leaked_reservations" in verdict:
            detail = (
                f"(clean = caught) leaked reservations {len(verdict['leaked_reservations'])}, "
                f"open intents {len(verdict['overdue_intents'])}, "
                f"unconfirmed refunds {len(verdict['unconfirmed_refunds'])}"
                + (
                    f"; {len(earlier)} reservations of earlier runs' orders"
                    if (earlier := verdict.get("earlier_leaked_reservations"))
                    else ""
                )
            )
        console.print(f"  {fraud}: {mark} {detail}")
    for warning in summary.warnings[:10]:
        console.print(f"[yellow]! {warning}[/]")


SHIP_WITHIN_ENV = "SHOPSTREAM_COMMERCE_SHIP_WITHIN_S"
# The services' consumers and outboxes may still be finishing the last orders when the day ends:
# a recount that disagrees is repeated after a pause, and only the last one is the verdict.
RECONCILE_ATTEMPTS = 3
RECONCILE_PAUSE_S = 5.0


def run_scope(run_id: str, started_at: datetime) -> Scope:
    """The records and ids of one run: its start time, its sellers and creators (world.py names
    them `<run>-seller-...` and `<run>-cr-...`)."""
    return Scope(since=started_at, sellers=(f"{run_id}-seller-",), creators=(f"{run_id}-cr-",))


def reconcile_run(
    kafka: KafkaSettings,
    auth: AuthSettings,
    grpc_targets: Mapping[str, str],
    run_id: str,
    started_at: datetime,
    *,
    attempts: int = RECONCILE_ATTEMPTS,
    pause_s: float = RECONCILE_PAUSE_S,
) -> tuple[Report, int]:
    """`shopstream reconcile` over this run's records: the report and the attempts it took."""
    scope = run_scope(run_id, started_at)
    for attempt in range(1, attempts + 1):
        report = reconcile(kafka, auth, grpc_targets, scope)
        if report.ok or attempt == attempts:
            return report, attempt
        time.sleep(pause_s)
    raise AssertionError("unreachable")


def reconcile_verdict(config: SimConfig, summary: Summary, console: Console) -> Report:
    console.print("\n[bold]reconcile[/]: recounting this run's records from the topics …")
    report, attempts = reconcile_run(
        config.kafka,
        config.auth,
        config.targets.grpc,
        summary.run_id,
        datetime.fromisoformat(summary.started_at),
    )
    show_reconcile(report)
    if attempts > 1:
        console.print(f"[dim](after {attempts} recounts {RECONCILE_PAUSE_S:g} s apart)[/]")
    return report


async def _run(config: SimConfig, args: argparse.Namespace) -> Summary:
    stop = asyncio.Event()
    main_task = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def interrupt() -> None:
        # First Ctrl-C: stop cleanly (finish steps, flush, summarise). Second: stop now.
        if stop.is_set() and main_task is not None:
            main_task.cancel()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, interrupt)
    view = line_view() if args.no_view or not sys.stdout.isatty() else live_view
    return await simulate(config, view=view, stop=stop)


def run(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = load_settings(SimulatorSettings)
    console = Console(stderr=False)
    try:
        config = config_from(args, settings)
    except ValueError as exc:
        console.print(f"[red]error:[/] {exc}")
        return EXIT_UNREACHABLE
    try:
        summary = asyncio.run(_run(config, args))
    except ServicesUnreachable as exc:
        console.print(f"[red]error:[/] {exc}")
        return EXIT_UNREACHABLE
    except asyncio.CancelledError:
        console.print("[yellow]stopped[/]")
        return EXIT_INTERRUPTED
    except aio.AioRpcError as exc:
        console.print(f"[red]error:[/] a service answered {exc.code().name}: {exc.details()}")
        return EXIT_FAILED
    if args.summary is not None:
        summary.write(args.summary)
        console.print(f"summary written to {args.summary}")
    report(summary, console)
    if summary.interrupted:
        return EXIT_INTERRUPTED
    if not args.no_reconcile:
        # Printed like the fraud verdicts, which do not decide the exit code either;
        # `shopstream reconcile` exits 1 on a mismatch.
        verdict = reconcile_verdict(config, summary, console)
        if args.summary is not None:
            path = args.summary.with_suffix(".reconcile.json")
            path.write_text(json.dumps(verdict.to_dict(), indent=2, default=str) + "\n")
            console.print(f"reconcile report written to {path}")
    return EXIT_OK


def main() -> None:
    try:
        code = run()
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    sys.exit(code)
