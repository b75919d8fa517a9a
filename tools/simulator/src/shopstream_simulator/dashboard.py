"""The live terminal view (rich) and, when no one is watching a terminal, a one-line progress."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from shopstream_simulator.ledger import Ledger
from shopstream_simulator.monitor import Snapshot, Telemetry

SYMBOLS = {"USD": "$", "GBP": "£", "EUR": "€"}
MINUTES_SHOWN = 8
SERVICES = ("catalog", "commerce", "ads", "creator-score")


def money(amount_minor: float, currency: str) -> str:
    symbol = SYMBOLS.get(currency)
    value = f"{amount_minor / 100:,.2f}"
    return f"{symbol}{value}" if symbol else f"{value} {currency}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _header(t: Telemetry) -> RenderableType:
    cfg = t.config
    title = Text.assemble(
        ("shopstream simulator", "bold magenta"),
        f"  run {t.run_id or '…'} · seed {cfg.seed} · {cfg.rate:g} {cfg.unit}/s · {cfg.duration_s:g}s",
    )
    ctx = t.context
    elapsed = ctx.elapsed() if ctx is not None and ctx.traffic_started is not None else 0.0
    if t.phase == "setting up the world" and t.total:
        bar = ProgressBar(total=t.total, completed=t.done, width=30)
        status = Text.assemble((t.phase, "yellow"), f": {t.stage} {t.done}/{t.total} ")
    else:
        bar = ProgressBar(total=cfg.duration_s, completed=min(elapsed, cfg.duration_s), width=30)
        status = Text.assemble((t.phase, "cyan"), f"  {elapsed:,.0f}s / {cfg.duration_s:g}s ")
    services = Text()
    for name, state in t.services.items():
        ok = state in ("SERVING", "UP")
        services.append(f" {name} ", style="green" if ok else "red")
        services.append("✓" if ok else "✗", style="green" if ok else "red")
    grid = Table.grid(padding=(0, 1))
    grid.add_row(title)
    grid.add_row(Text.assemble(status), bar, Text(f" journeys {t.journeys}"))
    grid.add_row(services)
    return grid


def _orders(t: Telemetry) -> RenderableType:
    ledger = t.ledger
    currency = t.config.currency
    table = Table(expand=True, box=None, header_style="bold")
    for column in ("minute", "orders", "paid", "GMV"):
        table.add_column(column, justify="right")
    if ledger.minutes:
        last = max(ledger.minutes)
        for m in range(max(0, last - MINUTES_SHOWN + 1), last + 1):
            row = ledger.minutes.get(m)
            table.add_row(
                str(m),
                _num(row.orders if row else 0),
                _num(row.paid if row else 0),
                money(row.gmv_minor if row else 0, currency),
            )
    o = ledger.orders
    paid = ledger.paid_minor[currency]
    refunded = ledger.refunded_minor[currency]
    table.add_section()
    table.add_row("all", _num(o["placed"]), _num(o["paid"]), money(paid, currency), style="bold")
    commerce_gmv = t.snapshot.delta(
        "commerce", "shopstream_commerce_gmv_minor_total", currency=currency
    )
    commerce_ref = t.snapshot.delta(
        "commerce", "shopstream_commerce_refunded_minor_total", currency=currency
    )
    lines = Text.assemble(
        f"refunds {o['refunds_approved']} ({money(refunded, currency)}) · rejected {sum(ledger.rejections.values())}"
        f" · cancelled {o['cancelled']} · declined {o['payments_declined']}\n",
        f"net {money(paid - refunded, currency)} by the simulator; commerce counted ",
        (
            money((commerce_gmv or 0) - (commerce_ref or 0), currency)
            if commerce_gmv is not None
            else "-",
            "bold",
        ),
        f"\nattributed: ad click {o['placed_with_ad_click']} · creator {o['placed_with_creator']}"
        f" · live {o['placed_in_live']}",
    )
    return Panel(Group(table, lines), title="orders & GMV per minute", border_style="green")


def _fraud(t: Telemetry) -> RenderableType:
    s = t.snapshot
    led = t.ledger
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold")
    table.add_column()
    flagged = s.delta_by("ads", "shopstream_ads_flagged_clicks_total", "reason")
    reasons = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(flagged.items()) if v) or "none yet"
    table.add_row(
        "click bots", f"{led.traffic['bot_clicks']:,} bot clicks sent → flagged: {reasons}"
    )
    decisions = s.delta_by("catalog", "shopstream_catalog_listing_decisions_total", "reason")
    held = decisions.get("PRICE_FAR_BELOW_MEDIAN", 0.0)
    table.add_row(
        "counterfeits",
        f"{len(led.fraud.counterfeit_products)} listed → {held:,.0f} held for review (price far below median)",
    )
    fakes = ", ".join(
        f"{f.name} {f.followers:,} followers, authenticity {f.authenticity:.0f}"
        + (" [red]FLAGGED[/]" if f.flags else "")
        for f in s.fakes
    )
    table.add_row("fake followers", fakes or f"{len(led.fraud.fake_follower_creator_ids)} planted")
    suppressed = s.delta("catalog", "shopstream_catalog_suppressions_total")
    table.add_row(
        "refund seller",
        f"{led.orders['placed_refund_heavy_seller']} orders, listings suppressed: {_num(suppressed)}"
        f" (now {_num(s.gauge('catalog', 'shopstream_catalog_products', status='SUPPRESSED'))} in catalog)",
    )
    table.add_row("late shipper", late_shipper_line(led))
    return Panel(table, title="fraud watch", border_style="red")


def late_shipper_line(led: Ledger) -> str:
    """The planted late shipper: orders, parcels held past ship-by, and its tiers so far."""
    tiers = " → ".join(
        f"{tier.removeprefix('QUALITY_TIER_')} ({', '.join(codes)})"
        if codes and tier != "QUALITY_TIER_NEW"
        else tier.removeprefix("QUALITY_TIER_")
        for _, tier, codes in led.late_shipper_tiers
    )
    return (
        f"{led.orders['placed_late_shipper']} orders, "
        f"{led.fulfilment['shipped_late_on_purpose']} shipped after ship-by → tier "
        f"{tiers or 'not read yet'}"
    )


def _creators(t: Telemetry) -> RenderableType:
    table = Table(expand=True, box=None, header_style="bold")
    # Ranked by the standing in the category (its sales there and the overall score), so that is
    # the number shown first; the overall score alone made the list look unsorted.
    for column, justify in (
        ("category", "left"),
        ("creator", "left"),
        ("in category", "right"),
        ("score", "right"),
        ("tier", "right"),
        ("GMV", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for category, rows in sorted(t.snapshot.top.items()):
        for i, row in enumerate(rows):
            name = row.name + (" ⚑" if row.flags else "")
            if not row.mine and "-cr-" in row.creator_id:
                name += f" ({row.creator_id.rsplit('-cr-', 1)[0]})"
            # Creators of earlier runs (or other callers) share the marketplace: shown dimmed.
            table.add_row(
                category if i == 0 else "",
                name,
                "-" if row.standing is None else f"{row.standing:.1f}",
                f"{row.score:.1f}",
                f"L{row.tier}",
                money(row.gmv_minor, t.config.currency),
                style=None if row.mine else "dim",
            )
    if not t.snapshot.top:
        table.add_row("-", "waiting for creator-score", "", "", "", "")
    return Panel(table, title="top creators by category", border_style="blue")


def _campaigns(t: Telemetry) -> RenderableType:
    table = Table(expand=True, box=None, header_style="bold")
    for column in ("campaign", "impr", "clicks", "spend", "attr. GMV", "ROAS"):
        table.add_column(column, justify="left" if column == "campaign" else "right")
    cur = t.config.currency
    for row in t.snapshot.campaigns[:8]:
        table.add_row(
            row.name[:28],
            _num(row.impressions),
            _num(row.clicks),
            money(row.spend_minor, cur),
            money(row.gmv_minor, cur) if row.gmv_minor is not None else "< k",
            f"{row.roas:.1f}x" if row.roas is not None else "-",
        )
    if not t.snapshot.campaigns:
        table.add_row(
            "no reports yet" if t.context and t.context.ads_ok else "ads unavailable",
            "",
            "",
            "",
            "",
            "",
        )
    return Panel(table, title="campaign ROAS", border_style="yellow")


OUTCOMES = "shopstream_commerce_package_outcomes_total"


def on_time_by_warehouse(s: Snapshot) -> dict[str, tuple[float, float]]:
    """Per warehouse: (packages that ended this run, the on-time share of them), from commerce's
    package outcomes (on_time, late, lost)."""
    on_time = s.delta_by("commerce", OUTCOMES, "warehouse", outcome="on_time")
    ended = s.delta_by("commerce", OUTCOMES, "warehouse")
    return {w: (n, on_time.get(w, 0.0) / n) for w, n in sorted(ended.items()) if n > 0}


def _fulfilment(t: Telemetry) -> RenderableType:
    f = t.ledger.fulfilment
    ended = f["delivered_on_time"] + f["delivered_late"] + f["lost"]
    rate = f"{100 * f['delivered_on_time'] / ended:.0f}%" if ended else "-"
    warehouses = on_time_by_warehouse(t.snapshot)
    by_warehouse = " · ".join(
        f"{w} {100 * share:.0f}% of {n:,.0f}"
        for w, (n, share) in sorted(warehouses.items(), key=lambda kv: -kv[1][0])[:4]
    )
    text = Text.assemble(
        f"shipped: by the platform {f['shipped_by_platform']:,} · with its carrier "
        f"{f['shipped_sandbox']:,} · own carriers {f['shipped_own_carrier']:,} · split orders "
        f"{f['orders_split']:,} · partly shipped {f['orders_partially_shipped']:,}\n",
        "arrived: on time ",
        (f"{rate}", "bold"),
        f" ({f['delivered_on_time']:,} on time, {f['delivered_late']:,} late, {f['lost']:,} lost, "
        f"{f['lost_refunded']:,} refunded) · on its way > wait {f['orders_still_on_the_way']:,}\n",
        f"on time per warehouse (commerce): {by_warehouse or 'none arrived yet'}\n",
        f"centres: inbound {f['inbound_received_units']:,}/{f['inbound_announced_units']:,} "
        f"units received ({f['inbound_lines_short']:,} lines short) · returns restocked "
        f"{f['returns_restocked']:,}, written off {f['returns_written_off']:,} · fees "
        f"{money(f['platform_fees_minor'], t.config.currency)} · storage charged (catalog) "
        f"{_storage(t)}",
    )
    return Panel(text, title="fulfilment: packages, carriers, centres", border_style="magenta")


def _storage(t: Telemetry) -> str:
    charged = t.snapshot.delta(
        "catalog", "shopstream_catalog_storage_fees_minor_total", currency=t.config.currency
    )
    return "-" if charged is None else money(round(charged), t.config.currency)


def _platform(t: Telemetry) -> RenderableType:
    s = t.snapshot
    table = Table(expand=True, box=None, header_style="bold")
    for column in ("service", "ready", "consumer lag", "consumed", "DLQ", "outbox"):
        table.add_column(column, justify="left" if column == "service" else "right")
    for name in SERVICES:
        if s.metrics.get(name) is None:
            table.add_row(name, "[red]no metrics[/]", "", "", "", "")
            continue
        table.add_row(
            name,
            "yes" if s.gauge(name, "shopstream_ready") else "[red]no[/]",
            _lag(s, name),
            _num(s.delta(name, "shopstream_events_consumed_total")),
            _num(s.delta(name, "shopstream_dlq_records_total")),
            _num(s.gauge(name, "shopstream_outbox_pending_records")),
        )
    traffic = t.ledger.traffic
    footer = Text(
        f"sent: impressions {traffic['impressions']:,} · clicks {traffic['clicks']:,} · profiles "
        f"{traffic['profiles']:,} · content stats {traffic['content_stats']:,} · live stats "
        f"{traffic['live_stats']:,} · failed {traffic['delivery_failed']:,}"
    )
    return Panel(Group(table, footer), title="platform", border_style="white")


def _lag(s: Snapshot, service: str) -> str:
    """Every consumer group's lag (Faust workers and combiners too) read from Kafka, with the
    largest seen this run; the service's own gauge when Kafka did not answer."""
    if service not in s.lag:
        return _num(s.gauge(service, "shopstream_consumer_lag_records"))
    behind = f", {s.behind[service]:,} events behind" if service in s.behind else ""
    return f"{s.lag[service]:,} (max {s.max_lag.get(service, 0):,}{behind})"


def render(t: Telemetry) -> RenderableType:
    grid = Table.grid(expand=True)
    grid.add_column(ratio=1)
    grid.add_column(ratio=1)
    grid.add_row(_orders(t), _fraud(t))
    grid.add_row(_creators(t), _campaigns(t))
    parts: list[RenderableType] = [_header(t), grid, _fulfilment(t), _platform(t)]
    if t.ledger.warnings:
        parts.append(Text("\n".join(f"! {w}" for w in t.ledger.warnings[-3:]), style="yellow"))
    return Group(*parts)


async def live_view(t: Telemetry) -> None:
    """Redraws twice a second until cancelled."""
    console = Console()
    with Live(
        render(t), console=console, refresh_per_second=4, screen=False, transient=False
    ) as live:
        while True:
            await asyncio.sleep(0.5)
            live.update(render(t))


def progress_line(t: Telemetry, started: float) -> str:
    led = t.ledger
    cur = t.config.currency
    ctx = t.context
    elapsed = ctx.elapsed() if ctx is not None and ctx.traffic_started is not None else 0.0
    s: Snapshot = t.snapshot
    flagged = s.delta("ads", "shopstream_ads_flagged_clicks_total")
    phase = (
        f"{t.phase} {t.stage} {t.done}/{t.total}" if t.phase == "setting up the world" else t.phase
    )
    return (
        f"[{time.monotonic() - started:6.0f}s] {phase} {elapsed:.0f}/{t.config.duration_s:g}s | "
        f"orders {led.orders['placed']} paid {led.orders['paid']} GMV {money(led.paid_minor[cur], cur)} "
        f"refunds {led.orders['refunds_approved']} | delivered {led.orders['delivered']} "
        f"late {led.fulfilment['delivered_late']} lost {led.fulfilment['lost']} | "
        f"impressions {led.traffic['impressions']} "
        f"clicks {led.traffic['clicks']} bot {led.traffic['bot_clicks']} flagged {_num(flagged)} | "
        f"journeys {t.journeys} | events {led.events():,} | lag "
        + " ".join(f"{name} {_lag(s, name)}" for name in SERVICES)
    )


def line_view(
    interval_s: float = 5.0, stream: TextIO | None = None
) -> Callable[[Telemetry], Coroutine[Any, Any, None]]:
    async def view(t: Telemetry) -> None:
        out = stream or sys.stdout
        started = time.monotonic()
        while True:
            await asyncio.sleep(interval_s)
            print(progress_line(t, started), file=out, flush=True)

    return view
