"""Rendering for humans (rich tables) or machines (--json), chosen once per invocation."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shopstream.common.v1.money_pb2 import Money

console = Console()
errors = Console(stderr=True)


def emit_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], *, as_json: bool
) -> None:
    if as_json:
        json.dump(
            [dict(zip(columns, row, strict=True)) for row in rows],
            sys.stdout,
            default=str,
            indent=2,
        )
        sys.stdout.write("\n")
        return
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    console.print(table)


def emit_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, default=str, indent=2)
    sys.stdout.write("\n")


def emit_json_line(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = 1) -> int:
    # Escaped: service messages may contain [brackets] that rich would take for markup; not
    # wrapped at the terminal width, so a log or a pipe gets the sentence whole.
    errors.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return code


def emit_message(message: Message) -> None:
    """A response as JSON (proto field names, as `topics tail` prints records)."""
    json.dump(
        json_format.MessageToDict(message, preserving_proto_field_name=True),
        sys.stdout,
        indent=2,
    )
    sys.stdout.write("\n")


def emit_fields(title: str, fields: Sequence[tuple[str, Any]]) -> None:
    """One record as a two-column table: a field name per row."""
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in fields:
        table.add_row(name, "" if value is None else str(value))
    console.print(table)


def note(text: str) -> None:
    console.print(f"[dim]{text}[/]")


# ISO 4217 currencies without minor units; every other code we meet has two decimals.
_ZERO_DECIMAL = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XAF", "XOF"})


def money(value: Money | None) -> str:
    """Integer minor units as a readable amount: `19.99 GBP`; empty when unset."""
    if value is None or (not value.currency and value.amount_minor == 0):
        return ""
    return minor_units(value.amount_minor, value.currency)


def minor_units(amount_minor: int, currency: str) -> str:
    places = 0 if currency.upper() in _ZERO_DECIMAL else 2
    amount = Decimal(amount_minor).scaleb(-places)
    return f"{amount:,.{places}f} {currency}".strip()


def timestamp(value: Timestamp | None) -> str:
    """UTC, to the second; empty when unset."""
    if value is None or (value.seconds == 0 and value.nanos == 0):
        return ""
    return value.ToDatetime().strftime("%Y-%m-%d %H:%M:%SZ")


def enum_label(name: str, prefix: str) -> str:
    """`ORDER_STATE_PAID` → `PAID` for tables (JSON keeps the full name)."""
    return name.removeprefix(prefix)
