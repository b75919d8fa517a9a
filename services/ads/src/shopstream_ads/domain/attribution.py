"""Last-touch attribution over a buyer's touchpoints, without device ids.

Rules (versioned in AttributionSettings.version):
- a click beats a view: a view is credited only when no click qualifies;
- a click qualifies within the click window before the order, a view within the view window;
- the latest qualifying touch wins (last touch);
- a buyer without tracking consent is attributed only through on-platform click ids the
  order's lines carry; their views are never used;
- a click followed by a paid order faster than a person can buy is invalid: it is not
  credited (and is reported so its charge is reversed).
"""

from __future__ import annotations

import bisect
import hashlib
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shopstream_ads.settings import AttributionSettings

State = dict[str, Any]
# A campaign's (click window, view window) in seconds; a view window of 0: views not credited.
Windows = Callable[[str], tuple[int, int]]

CLICK = "c"
VIEW = "v"
# A touch: [kind, touch_id, campaign_id, at, via] — via: a click's impression id.
KIND, TOUCH_ID, CAMPAIGN, AT, VIA = range(5)
# C-level key for sorts and searches by time (a lambda costs a Python call per comparison).
_AT_KEY = operator.itemgetter(AT)


@dataclass(frozen=True)
class OrderFacts:
    order_id: str
    at: float
    tracking_consent: bool
    ad_click_ids: frozenset[str]


@dataclass(frozen=True)
class Credit:
    kind: str
    touch_id: str
    campaign_id: str
    touched_at: float


@dataclass(frozen=True)
class Decision:
    credit: Credit | None
    # Clicks found too close to the order: flagged IMPOSSIBLE_TIMING, never credited.
    too_fast: tuple[Credit, ...]


# Input event ids a buyer remembers (hashed) for the inputs that are not idempotent by their own
# ids (screened clicks, refunds): an upstream re-send is absorbed, a new input is not.
RECENT_IDS = 256
# Impressions of invalid clicks remembered per buyer (hashed), so they never become view touches.
TAINTED_IDS = 256


def new_buyer_state() -> State:
    # touches: newest last; click_times: recent clicks for the burst rule;
    # orders: order id -> the facts attribution needs and its credit;
    # held: inputs waiting for the join grace ([due, kind, ...], see the worker);
    # recent: hashed event ids (RECENT_IDS); wm: the last input batch offset applied.
    return {"touches": [], "click_times": [], "orders": {}, "held": [], "recent": []}


def first_time(state: State, event_id: str) -> bool:
    """Remember an input's event id; False when the buyer saw it before (an upstream re-send)."""
    recent: list[int] = state.setdefault("recent", [])
    key = _id_hash(event_id)
    if key in recent:
        return False
    recent.append(key)
    if len(recent) > RECENT_IDS:
        del recent[: len(recent) - RECENT_IDS]
    return True


def add_touches(state: State, new: list[list[Any]], rules: AttributionSettings) -> None:
    """Several touches at once (a batch of one buyer's impressions), kept in time order (a
    stable merge: equal times keep their arrival order), then trimmed to the windows and cap."""
    touches = state["touches"]
    if len(new) > 1:
        new.sort(key=_AT_KEY)
    for touch in new:
        if not touches or touches[-1][AT] <= touch[AT]:
            touches.append(touch)
        else:  # an impression older than a click already known (they travel apart)
            bisect.insort_right(touches, touch, key=_AT_KEY)
    horizon = touches[-1][AT] - max(rules.click_window_s, rules.view_window_s, rules.keep_touches_s)
    if touches[0][AT] < horizon:
        touches = touches[bisect.bisect_left(touches, horizon, key=_AT_KEY) :]
    if len(touches) > rules.max_touches_per_buyer:
        touches = touches[-rules.max_touches_per_buyer :]
    state["touches"] = touches


def remember_touch(
    state: State,
    kind: str,
    touch_id: str,
    campaign_id: str,
    at: float,
    rules: AttributionSettings,
    via: str = "",
) -> None:
    add_touches(state, [[kind, touch_id, campaign_id, at, via]], rules)


def has_touch_at(state: State, kind: str, touch_id: str, at: float) -> bool:
    """`has_touch` for a touch whose time is known (a re-sent impression keeps its time): a
    binary search in the time-ordered touches, not a scan of all of them."""
    touches = state["touches"]
    k = bisect.bisect_left(touches, at, key=_AT_KEY)
    while k < len(touches) and touches[k][AT] == at:
        if touches[k][TOUCH_ID] == touch_id and touches[k][KIND] == kind:
            return True
        k += 1
    return False


def has_touch(state: State, kind: str, touch_id: str) -> bool:
    return any(t[KIND] == kind and t[TOUCH_ID] == touch_id for t in state["touches"])


def forget_touch(state: State, kind: str, touch_id: str) -> list[str]:
    """Forget an invalid touch; for a click, also the impression it came through (traffic from
    a flagged click's session is not a view worth crediting either). Returns the ids of the
    touches forgotten (empty: none was known)."""
    gone = [t for t in state["touches"] if t[KIND] == kind and t[TOUCH_ID] == touch_id]
    vias = {t[VIA] for t in gone if len(t) > VIA and t[VIA]}
    forgotten = [t[TOUCH_ID] for t in state["touches"] if t[KIND] == VIEW and t[TOUCH_ID] in vias]
    state["touches"] = [
        t
        for t in state["touches"]
        if not (t[KIND] == kind and t[TOUCH_ID] == touch_id)
        and not (t[KIND] == VIEW and t[TOUCH_ID] in vias)
    ]
    # The views stay out when they arrive later too (impressions and clicks travel apart): the
    # outcome must not depend on which came first.
    _taint(state, [touch_id] if kind == VIEW else sorted(vias))
    return [t[TOUCH_ID] for t in gone] + forgotten


def _id_hash(ident: str) -> int:
    return int.from_bytes(hashlib.blake2b(ident.encode(), digest_size=8).digest(), "big")


def _taint(state: State, impression_ids: list[str]) -> None:
    if not impression_ids:
        return
    tainted: list[int] = state.setdefault("tainted", [])
    for impression_id in impression_ids:
        key = _id_hash(impression_id)
        if key not in tainted:
            tainted.append(key)
    if len(tainted) > TAINTED_IDS:
        del tainted[: len(tainted) - TAINTED_IDS]


def is_tainted(state: State, impression_id: str) -> bool:
    """An impression a flagged or voided click came through: never credited as a view."""
    tainted: list[int] = state.get("tainted") or []
    return bool(tainted) and _id_hash(impression_id) in tainted


def default_windows(rules: AttributionSettings) -> Windows:
    """Every campaign on the platform's windows."""
    both = (rules.click_window_s, rules.view_window_s)
    return lambda _campaign_id: both


def decide(
    state: State, order: OrderFacts, rules: AttributionSettings, windows: Windows | None = None
) -> Decision:
    """The order's credit; each touch counts within its own campaign's windows (`windows`,
    default the platform's)."""
    window = windows or default_windows(rules)
    too_fast: list[Credit] = []
    clicks = [
        t
        for t in state["touches"]
        if t[KIND] == CLICK
        and 0 <= order.at - t[AT] <= window(t[CAMPAIGN])[0]
        and (order.tracking_consent or t[TOUCH_ID] in order.ad_click_ids)
    ]
    # The impressions too-fast clicks came through: forgotten with them, never credited.
    tainted: set[str] = set()
    for t in sorted(clicks, key=lambda t: t[AT], reverse=True):
        credit = Credit(CLICK, t[TOUCH_ID], t[CAMPAIGN], t[AT])
        if order.at - t[AT] < rules.min_click_to_order_s:
            too_fast.append(credit)
            if len(t) > VIA and t[VIA]:
                tainted.add(t[VIA])
            continue
        return Decision(credit, tuple(too_fast))
    if order.tracking_consent:
        views = [
            t
            for t in state["touches"]
            if t[KIND] == VIEW
            and 0 <= order.at - t[AT] <= window(t[CAMPAIGN])[1]
            and t[TOUCH_ID] not in tainted
        ]
        if state.get("tainted"):
            # Impressions an invalid click came through, also those that arrived after the flag
            # (counted and charged as served, never credited).
            views = [t for t in views if not is_tainted(state, t[TOUCH_ID])]
        if views:
            last = max(views, key=lambda t: t[AT])
            return Decision(Credit(VIEW, last[TOUCH_ID], last[CAMPAIGN], last[AT]), tuple(too_fast))
    return Decision(None, tuple(too_fast))
