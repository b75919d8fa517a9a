"""The `shopstream reconcile` command: a progress line while reading, a table of checks, every
mismatch, or the whole report as JSON; exit 1 when anything does not match."""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from shopstream_cli.output import console, emit_json, emit_table, note
from shopstream_cli.reconcile.report import Report
from shopstream_cli.reconcile.run import reconcile
from shopstream_cli.reconcile.scope import Scope
from shopstream_platform.settings import AuthSettings, KafkaSettings

# Mismatches printed in the table; --json has all of them.
SHOWN = 50


def run(
    kafka: KafkaSettings,
    auth: AuthSettings,
    addresses: Mapping[str, str],
    scope: Scope,
    *,
    as_json: bool,
    timeout_s: float,
) -> int:
    # The progress line goes to stderr, so `--json > file` stays clean.
    with Progress(
        TextColumn("[dim]{task.description}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("reading topics", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        def phase(text: str) -> None:
            bar.update(task, description=text)

        report = reconcile(
            kafka, auth, addresses, scope, progress=progress, phase=phase, timeout_s=timeout_s
        )
    if as_json:
        emit_json(report.to_dict())
    else:
        show(report)
    return report.exit_code


def show(report: Report) -> None:
    emit_table(
        f"Reconcile ({report.scope})",
        ["check", "compared", "mismatches", "what"],
        [
            (
                c.name,
                f"{c.compared:,}" if not c.skipped else "skipped",
                len(c.mismatches) if not c.skipped else "-",
                c.description,
            )
            for c in report.checks
        ],
        as_json=False,
    )
    mismatches = report.mismatches
    if mismatches:
        emit_table(
            f"Mismatches ({len(mismatches)}{f', first {SHOWN}' if len(mismatches) > SHOWN else ''})",
            ["check", "subject", "recounted", "service", "detail"],
            [(m.check, m.subject, m.recounted, m.service, m.detail) for m in mismatches[:SHOWN]],
            as_json=False,
        )
    for text in report.notes:
        note(text)
    for reason in sorted({f"{c.skipped}" for c in report.checks if c.skipped}):
        names = ", ".join(c.name for c in report.checks if c.skipped == reason)
        note(f"skipped {names}: {reason}")
    if report.duplicates or report.undecodable:
        note(
            f"{report.duplicates:,} records re-sent with a ce_id already read (counted once), "
            f"{report.undecodable:,} undecodable"
        )
    style = "green" if report.ok else "bold red"
    console.print(f"[{style}]{report.verdict()}[/]")
