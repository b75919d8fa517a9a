"""A creator's running state as kept in the Faust table (a JSON-able dict), and its updates.

Each update takes the event's time, so replays and recoveries compute the same numbers.
Nothing is counted twice, and the state stays small (it is one changelog record per change):
- a redelivered input batch is skipped by the watermark `wm`, the offset of the last batch
  record applied (a creator's batches are ordered in one partition);
- profiles (the newest by time wins), content counters (cumulative: only growth counts) and live
  sessions (by session id) are idempotent by themselves, so a re-sent one changes nothing;
- only additive inputs (sales, ad credits), which an upstream re-send would count twice, are
  checked against a short list of recent ids (`seen`).
Both live inside the state, so they are written in the same changelog record as the effect they
guard.
"""

from __future__ import annotations

import hashlib
import marshal
import math
from dataclasses import dataclass
from typing import Any

# Recent ids of additive inputs per creator: an upstream re-send (an outbox relaying a row again)
# arrives within seconds, far fewer than this many sales of one creator later.
RECENT_IDS = 256
FOLLOWER_HISTORY = 60
CONTENT_KEPT = 300
LIVES_KEPT = 300
DAY_S = 86_400.0

State = dict[str, Any]


def new_state(creator_id: str) -> State:
    return {
        "id": creator_id,
        "name": creator_id,
        "followers": 0,
        "mcn": "",
        "declared": [],
        "history": [],  # [[day, followers], ...] one entry per day, oldest first
        "content": {},  # content id -> [published_at, views, likes, comments, shares]
        "views": [0.0, 0.0],  # [decayed value, at]
        "engagements": [0.0, 0.0],
        "activity": [0.0, 0.0],
        "gmv": [0.0, 0.0],
        "refunds": [0.0, 0.0],
        "by_cat": {},  # category -> [decayed gmv, at]
        "currency": "",
        "lives": {},  # live session id -> [started_at, peak viewers]
        "live": [0, 0, 0.0],  # [sessions, best peak viewers, last started at]
        "ad_gmv": [0.0, 0.0],  # decayed ad-attributed GMV (net of refunds and withdrawals)
        "ad_orders": 0,
        "recent": [],  # ids of recent additive inputs (sales, ad credits)
        "wm": -1,  # offset of the last input batch record applied
        "profile_at": 0.0,  # time of the newest profile applied
        "updated_at": 0.0,
        "published": None,  # the last published score, None before the first
    }


def copy_state(state: State) -> State:
    """A deep copy, about 10x cheaper than copy.deepcopy (a state holds only JSON types)."""
    copied: State = marshal.loads(marshal.dumps(state))
    return copied


def trim_recent(state: State) -> None:
    """States written before the diet remembered 2,000 event ids of every kind."""
    recent = state.get("recent")
    if recent is not None and len(recent) > RECENT_IDS:
        del recent[: len(recent) - RECENT_IDS]


def id_hash(event_id: str) -> int:
    """64 bits of an event id: a third of its size in the state's JSON, and as unique among a
    creator's few hundred recent ids (a false match is a 2^-56 chance)."""
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big")


def decay(cell: list[float], now: float, half_life_s: float) -> float:
    """The cell's value at `now` (decayed since its time); never decays backwards in time."""
    value, at = cell
    if now <= at or value == 0.0:
        return value
    return value * math.pow(0.5, (now - at) / half_life_s)


def add(cell: list[float], amount: float, now: float, half_life_s: float) -> list[float]:
    """Add an amount that happened at `now`. A late (older) amount is decayed to the cell's
    time, so the cell is the same sum of decayed amounts whatever order events arrive in."""
    at = max(now, cell[1])
    late = math.pow(0.5, (at - now) / half_life_s) if now < at else 1.0
    return [decay(cell, at, half_life_s) + amount * late, at]


def seen(state: State, event_id: str) -> bool:
    """True if the event was applied already; otherwise remember it."""
    recent: list[int | str] = state["recent"]
    key = id_hash(event_id)
    if key in recent:
        return True
    recent.append(key)
    if len(recent) > RECENT_IDS:
        del recent[: len(recent) - RECENT_IDS]
    return False


def apply_profile(
    state: State, *, name: str, followers: int, mcn: str, declared: list[str], at: float
) -> None:
    """The newest profile by time wins, so a re-sent or late one changes nothing."""
    if at < state.get("profile_at", 0.0):
        return
    state["profile_at"] = at
    state["name"] = name or state["name"]
    state["followers"] = max(0, followers)
    state["mcn"] = mcn
    state["declared"] = sorted(set(declared))
    day = int(at // DAY_S)
    history: list[list[int]] = state["history"]
    if history and history[-1][0] == day:
        history[-1][1] = followers
    elif not history or history[-1][0] < day:
        history.append([day, followers])
    if len(history) > FOLLOWER_HISTORY:
        del history[: len(history) - FOLLOWER_HISTORY]
    state["updated_at"] = max(state["updated_at"], at)


@dataclass(frozen=True)
class ContentCounters:
    content_id: str
    published_at: float
    views: int
    likes: int
    comments: int
    shares: int


def _keep_newest(entries: dict[str, list[float]], limit: int, current: str) -> None:
    """Forget the oldest entries (by their first number, a time) past the limit, never the one
    just written."""
    if len(entries) > limit:
        by_age = sorted((k for k in entries if k != current), key=lambda k: entries[k][0])
        for oldest in by_age[: len(entries) - limit]:
            del entries[oldest]


def _first_sighting(
    state: State, content_id: str, published_at: float, at: float, half_life_s: float
) -> list[float]:
    """The content's counters; the first time a video or live session is seen (by its stats or,
    for a live session, by commerce.live.v1) it counts once as activity."""
    content: dict[str, list[float]] = state["content"]
    before = content.get(content_id)
    if before is None:
        before = content[content_id] = [published_at, 0, 0, 0, 0]
        state["activity"] = add(state["activity"], 1.0, max(published_at, 0.0) or at, half_life_s)
        _keep_newest(content, CONTENT_KEPT, content_id)
    return before


def apply_content(state: State, c: ContentCounters, at: float, half_life_s: float) -> None:
    """Counters are cumulative per content: add only the growth since the last report."""
    content: dict[str, list[float]] = state["content"]
    before = _first_sighting(state, c.content_id, c.published_at, at, half_life_s)
    views = max(0, c.views - int(before[1]))
    engagements = max(0, (c.likes + c.comments + c.shares) - int(before[2] + before[3] + before[4]))
    content[c.content_id] = [
        before[0],
        max(before[1], c.views),
        max(before[2], c.likes),
        max(before[3], c.comments),
        max(before[4], c.shares),
    ]
    state["views"] = add(state["views"], float(views), at, half_life_s)
    state["engagements"] = add(state["engagements"], float(engagements), at, half_life_s)
    state["updated_at"] = max(state["updated_at"], at)


def apply_sale(
    state: State,
    *,
    amount_minor: int,
    by_category: dict[str, int],
    currency: str,
    at: float,
    half_life_s: float,
) -> None:
    """A paid order (positive) or a refund (negative) attributed to the creator."""
    if amount_minor >= 0:
        state["gmv"] = add(state["gmv"], float(amount_minor), at, half_life_s)
    else:
        state["refunds"] = add(state["refunds"], float(-amount_minor), at, half_life_s)
    by_cat: dict[str, list[float]] = state["by_cat"]
    for category, amount in by_category.items():
        cell = by_cat.get(category, [0.0, 0.0])
        by_cat[category] = add(cell, float(amount), at, half_life_s)
    state["currency"] = currency or state["currency"]
    state["updated_at"] = max(state["updated_at"], at)


def apply_live(
    state: State,
    *,
    session_id: str,
    started_at: float,
    ended: bool,
    peak_viewers: int,
    at: float,
    half_life_s: float,
) -> None:
    """A live session started or ended. Views and engagement come from the session's content
    stats; here the session counts as activity (once, shared with its content stats) and as
    a session, and its peak audience is kept."""
    lives: dict[str, list[float]] = state.setdefault("lives", {})
    live: list[float] = state.setdefault("live", [0, 0, 0.0])
    if session_id not in lives:
        lives[session_id] = [started_at, 0]
        live[0] += 1
        live[2] = max(live[2], started_at)
        _first_sighting(state, session_id, started_at, at, half_life_s)
        _keep_newest(lives, LIVES_KEPT, session_id)
    if ended:
        lives[session_id][1] = max(lives[session_id][1], peak_viewers)
        live[1] = max(live[1], peak_viewers)
    state["updated_at"] = max(state["updated_at"], at)


def apply_ad_credit(
    state: State,
    *,
    amount_minor: int,
    withdrawn: bool,
    refund: bool,
    at: float,
    half_life_s: float,
) -> None:
    """The creator's share of an ad attribution: credits add, refunds and withdrawals subtract."""
    state["ad_gmv"] = add(state.get("ad_gmv", [0.0, 0.0]), float(amount_minor), at, half_life_s)
    if withdrawn:
        state["ad_orders"] = state.get("ad_orders", 0) - 1
    elif not refund:
        state["ad_orders"] = state.get("ad_orders", 0) + 1
    state["updated_at"] = max(state["updated_at"], at)
