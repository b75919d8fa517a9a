"""A campaign's ledger: counts per UTC day, spend against the budgets, attributed value.

Charges are in micro-units (1/1,000 of a minor unit) because a CPM impression costs a thousandth
of its price. A charge never takes spend past the daily or the total budget: what is left is
charged, and nothing after that (the campaign has stopped being selected by then).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from shopstream_ads.domain.campaigns import BidType, Campaign

State = dict[str, Any]

# Kinds, as shopstream.ads.v1.LedgerKind values.
IMPRESSION, CLICK, CLICK_VOIDED, CONVERSION, REFUND, CONVERSION_WITHDRAWN = 1, 2, 3, 4, 5, 6
# A day cell: [impressions, clicks, spend_micros, conversions, gmv_minor]
IMPS, CLICKS, SPEND, CONVS, GMV = range(5)


# Entry ids the ledger remembers (hashed), to absorb redelivered lines: a redelivery comes from
# the uncommitted tail of ads.ledger.v1, a few seconds of lines per campaign.
REMEMBERED_ENTRIES = 4_096
# How long a billed click's charge is kept for a void: voids come from bursts (a minute), from a
# paid order too soon after the click and from the join grace (seconds), never days later.
VOIDABLE_FOR_S = 86_400.0


def day_of(at: float) -> str:
    return _day_name(int(at // 86_400))


@lru_cache(maxsize=64)
def _day_name(day: int) -> str:
    # Once per UTC day, not per impression: formatting a date costs more than the rest of a charge.
    return datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%d")


def new_ledger_state() -> State:
    # ids: hashed entry ids applied (newest last); clicks: hashed click entry id ->
    # [charge_micros, day, clicked_at] of the billed clicks a void may still reverse. Both live
    # in the campaign's one record, so they cannot drift from its counts under kill -9.
    return {
        "spent": 0,
        "days": {},
        "exhausted_total": False,
        "exhausted_days": [],
        "ids": [],
        "clicks": {},
    }


def entry_key(entry_id: str) -> int:
    """A 64-bit hash of an entry id: what the state remembers (stable across processes)."""
    return int.from_bytes(hashlib.blake2b(entry_id.encode(), digest_size=8).digest(), "big")


def first_time(state: State, entry_id: str) -> bool:
    """Remember `entry_id`; False when it was applied before (a redelivered line)."""
    ids: list[int] = state.setdefault("ids", [])
    key = entry_key(entry_id)
    if key in ids:
        return False
    ids.append(key)
    if len(ids) > REMEMBERED_ENTRIES:
        del ids[: len(ids) - REMEMBERED_ENTRIES]
    return True


def remember_click(state: State, entry_id: str, charge_micros: int, at: float) -> None:
    """A billed click's charge, for a later void; clicks past the void horizon are forgotten."""
    clicks: dict[str, list[Any]] = state.setdefault("clicks", {})
    clicks[str(entry_key(entry_id))] = [charge_micros, day_of(at), at]
    if len(clicks) % 256 == 0:  # now and then: a scan per click would cost O(clicks kept)
        horizon = at - VOIDABLE_FOR_S
        for key in [k for k, c in clicks.items() if c[2] < horizon]:
            del clicks[key]


def take_click(state: State, entry_id: str) -> list[Any] | None:
    """The charge of a billed click to void (once: a second void finds nothing)."""
    clicks: dict[str, list[Any]] = state.setdefault("clicks", {})
    return clicks.pop(str(entry_key(entry_id)), None)


@dataclass
class Applied:
    charge_micros: int = 0
    # Budgets this entry exhausted: "daily" and/or "total" (published once each).
    exhausted: list[str] = field(default_factory=list)


def _cell(state: State, day: str) -> list[int]:
    cell: list[int] = state["days"].setdefault(day, [0, 0, 0, 0, 0])
    return cell


def _price_micros(campaign: Campaign, kind: int, clearing_minor: int) -> int:
    price = min(clearing_minor, campaign.bid_minor) if clearing_minor > 0 else campaign.bid_minor
    if kind == IMPRESSION and campaign.bid_type is BidType.CPM:
        return price  # per 1,000 impressions: price minor = price micros per impression
    if kind == CLICK and campaign.bid_type is BidType.CPC:
        return price * 1_000
    return 0


def _charge(state: State, campaign: Campaign, day: str, price_micros: int) -> Applied:
    cell = _cell(state, day)
    room = min(
        campaign.total_budget_minor * 1_000 - state["spent"],
        campaign.daily_budget_minor * 1_000 - cell[SPEND],
    )
    charge = max(0, min(price_micros, room))
    state["spent"] += charge
    cell[SPEND] += charge
    applied = Applied(charge)
    if not state["exhausted_total"] and state["spent"] >= campaign.total_budget_minor * 1_000:
        state["exhausted_total"] = True
        applied.exhausted.append("total")
    if day not in state["exhausted_days"] and cell[SPEND] >= campaign.daily_budget_minor * 1_000:
        state["exhausted_days"] = [*state["exhausted_days"][-30:], day]
        applied.exhausted.append("daily")
    return applied


def apply_served(
    state: State, campaign: Campaign, kind: int, at: float, clearing_minor: int
) -> Applied:
    """An impression or a click: counted, and charged when the campaign pays for that kind."""
    day = day_of(at)
    _cell(state, day)[IMPS if kind == IMPRESSION else CLICKS] += 1
    return _charge(state, campaign, day, _price_micros(campaign, kind, clearing_minor))


def apply_served_many(
    state: State, campaign: Campaign, kind: int, at: float, served_at_price: dict[int, int]
) -> Applied:
    """Many impressions (or clicks) of one day at once, as counts per clearing price: charged as
    each one would be alone (the budget caps the total the same way, whatever the order)."""
    day = day_of(at)
    _cell(state, day)[IMPS if kind == IMPRESSION else CLICKS] += sum(served_at_price.values())
    applied = Applied()
    for clearing_minor, count in sorted(served_at_price.items()):
        step = _charge(state, campaign, day, _price_micros(campaign, kind, clearing_minor) * count)
        applied.charge_micros += step.charge_micros
        applied.exhausted.extend(step.exhausted)
    return applied


def apply_void(state: State, day: str, charge_micros: int) -> None:
    """A billed click found invalid later: out of the click count, its charge refunded."""
    cell = _cell(state, day)
    cell[CLICKS] -= 1
    cell[SPEND] -= charge_micros
    state["spent"] -= charge_micros


def apply_conversion(state: State, kind: int, at: float, amount_minor: int) -> None:
    """A credited order on the day it was paid; a refund reduces that same day's GMV; a
    withdrawn credit takes the order out of the day again."""
    cell = _cell(state, day_of(at))
    if kind == REFUND:
        cell[GMV] -= amount_minor
    elif kind == CONVERSION_WITHDRAWN:
        cell[CONVS] -= 1
        cell[GMV] -= amount_minor
    else:
        cell[CONVS] += 1
        cell[GMV] += amount_minor
