"""Risk signals that freeze commissions (pure): a creator flagged for fake followers, an order
line whose ad click was flagged as invalid traffic. A frozen commission is not paid out at
settlement; it waits in the frozen account for a person."""

from __future__ import annotations

from collections.abc import Iterable


def creator_reason(flags: Iterable[str], risky: Iterable[str]) -> str:
    """Why a creator's commission is frozen ("" when it is not): the first risky flag."""
    hits = sorted(set(flags) & set(risky))
    return f"creator flagged: {', '.join(hits)}" if hits else ""


def click_reason(flag_reason: str | None) -> str:
    return "" if flag_reason is None else f"ad click flagged: {flag_reason}"


def freeze_reason(creator: str, click: str) -> str:
    """The creator's reason first (it covers every line), else the line's click."""
    return creator or click
