"""A creator's running state as kept in the Faust table (a typed JSON dict), and its updates.

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

The changelog holds these states as JSON, so their shape is a wire format: `State` types the
keys, and the small fixed-position lists (cells, content entries, ...) keep their positions,
named by the constants below. Keys added after the first release are `NotRequired`: states
written before them still load and are read with a default.
"""

from __future__ import annotations

import hashlib
import marshal
import math
from dataclasses import dataclass
from typing import NotRequired, TypedDict, cast

# Recent ids of additive inputs per creator: an upstream re-send (an outbox relaying a row again)
# arrives within seconds, far fewer than this many sales of one creator later.
RECENT_IDS = 256
FOLLOWER_HISTORY = 60
CONTENT_KEPT = 300
LIVES_KEPT = 300
DAY_S = 86_400.0

# A decayed amount: [value, at], the value as of `at` (epoch seconds); see decay() and add().
Cell = list[float]
VALUE, AT = 0, 1
# A follower count per day: [day number since the epoch, followers].
HistoryEntry = list[int]
DAY, FOLLOWERS = 0, 1
# The last cumulative counters of a piece of content: [published_at, views, likes, comments,
# shares] (a live session's entry too: it shares its id with the session's content stats).
ContentEntry = list[float]
PUBLISHED_AT, VIEWS, LIKES, COMMENTS, SHARES = 0, 1, 2, 3, 4
# A live session: [started_at, peak viewers].
LiveEntry = list[float]
STARTED_AT, PEAK_VIEWERS = 0, 1
# All live sessions: [sessions, best peak viewers, last started at].
LiveTotals = list[float]
SESSIONS, BEST_PEAK, LAST_STARTED_AT = 0, 1, 2


class State(TypedDict):
    """One creator's state: the table's value for its id (JSON in the changelog)."""

    id: str
    name: str
    followers: int
    mcn: str
    declared: list[str]
    history: list[HistoryEntry]  # one entry per day, oldest first
    content: dict[str, ContentEntry]  # content id -> its last counters
    views: Cell
    engagements: Cell
    activity: Cell
    gmv: Cell
    refunds: Cell
    by_cat: dict[str, Cell]  # category -> decayed GMV in it
    currency: str
    updated_at: float
    recent: list[int | str]  # ids of recent additive inputs (sales, ad credits), hashed
    # Added after the first release: states written before lack them.
    lives: NotRequired[dict[str, LiveEntry]]  # live session id -> its entry
    live: NotRequired[LiveTotals]
    ad_gmv: NotRequired[Cell]  # decayed ad-attributed GMV (net of refunds and withdrawals)
    ad_orders: NotRequired[int]
    wm: NotRequired[int]  # offset of the last input batch record applied
    profile_at: NotRequired[float]  # time of the newest profile applied
    published: NotRequired[float | None]  # the last published score, None before the first


def new_state(creator_id: str) -> State:
    return {
        "id": creator_id,
        "name": creator_id,
        "followers": 0,
        "mcn": "",
        "declared": [],
        "history": [],
        "content": {},
        "views": [0.0, 0.0],
        "engagements": [0.0, 0.0],
        "activity": [0.0, 0.0],
        "gmv": [0.0, 0.0],
        "refunds": [0.0, 0.0],
        "by_cat": {},
        "currency": "",
        "lives": {},
        "live": [0, 0, 0.0],
        "ad_gmv": [0.0, 0.0],
        "ad_orders": 0,
        "recent": [],
        "wm": -1,
        "profile_at": 0.0,
        "updated_at": 0.0,
        "published": None,
    }


def copy_state(state: State) -> State:
    """A deep copy, about 10x cheaper than copy.deepcopy (a state holds only JSON types)."""
    # A State is a dict of JSON types, which marshal takes; its stub does not see a TypedDict.
    copied: State = marshal.loads(marshal.dumps(cast(dict[str, object], state)))
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


def decay(cell: Cell, now: float, half_life_s: float) -> float:
    """The cell's value at `now` (decayed since its time); never decays backwards in time."""
    value, at = cell
    if now <= at or value == 0.0:
        return value
    return value * math.pow(0.5, (now - at) / half_life_s)


def add(cell: Cell, amount: float, now: float, half_life_s: float) -> Cell:
    """Add an amount that happened at `now`. A late (older) amount is decayed to the cell's
    time, so the cell is the same sum of decayed amounts whatever order events arrive in."""
    at = max(now, cell[AT])
    late = math.pow(0.5, (at - now) / half_life_s) if now < at else 1.0
    return [decay(cell, at, half_life_s) + amount * late, at]


def seen(state: State, event_id: str) -> bool:
    """True if the event was applied already; otherwise remember it."""
    recent = state["recent"]
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
    history = state["history"]
    if history and history[-1][DAY] == day:
        history[-1][FOLLOWERS] = followers
    elif not history or history[-1][DAY] < day:
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
    """Forget the oldest entries (by their first number, a time: PUBLISHED_AT or STARTED_AT)
    past the limit, never the one just written."""
    if len(entries) > limit:
        by_age = sorted((k for k in entries if k != current), key=lambda k: entries[k][0])
        for oldest in by_age[: len(entries) - limit]:
            del entries[oldest]


def _first_sighting(
    state: State, content_id: str, published_at: float, at: float, half_life_s: float
) -> ContentEntry:
    """The content's counters; the first time a video or live session is seen (by its stats or,
    for a live session, by commerce.live.v1) it counts once as activity."""
    content = state["content"]
    before = content.get(content_id)
    if before is None:
        before = content[content_id] = [published_at, 0, 0, 0, 0]
        state["activity"] = add(state["activity"], 1.0, max(published_at, 0.0) or at, half_life_s)
        _keep_newest(content, CONTENT_KEPT, content_id)
    return before


def apply_content(state: State, c: ContentCounters, at: float, half_life_s: float) -> None:
    """Counters are cumulative per content: add only the growth since the last report."""
    content = state["content"]
    before = _first_sighting(state, c.content_id, c.published_at, at, half_life_s)
    views = max(0, c.views - int(before[VIEWS]))
    engaged_before = before[LIKES] + before[COMMENTS] + before[SHARES]
    engagements = max(0, (c.likes + c.comments + c.shares) - int(engaged_before))
    content[c.content_id] = [
        before[PUBLISHED_AT],
        max(before[VIEWS], c.views),
        max(before[LIKES], c.likes),
        max(before[COMMENTS], c.comments),
        max(before[SHARES], c.shares),
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
    by_cat = state["by_cat"]
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
    lives = state.setdefault("lives", {})
    live = state.setdefault("live", [0, 0, 0.0])
    if session_id not in lives:
        lives[session_id] = [started_at, 0]
        live[SESSIONS] += 1
        live[LAST_STARTED_AT] = max(live[LAST_STARTED_AT], started_at)
        _first_sighting(state, session_id, started_at, at, half_life_s)
        _keep_newest(lives, LIVES_KEPT, session_id)
    if ended:
        lives[session_id][PEAK_VIEWERS] = max(lives[session_id][PEAK_VIEWERS], peak_viewers)
        live[BEST_PEAK] = max(live[BEST_PEAK], peak_viewers)
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
