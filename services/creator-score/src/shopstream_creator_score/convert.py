"""Creator state and scores → protobuf messages and index summaries."""

from __future__ import annotations

from datetime import UTC, datetime

from shopstream.common.v1 import money_pb2
from shopstream.creators.v1 import creators_pb2
from shopstream_creator_score.domain.formula import FORMULA_VERSION, Score
from shopstream_creator_score.domain.state import State
from shopstream_creator_score.search.index import CreatorSummary


def categories_of(state: State, s: Score) -> tuple[str, ...]:
    return tuple(sorted(s.category_scores))


def summary(state: State, s: Score) -> CreatorSummary:
    return CreatorSummary(
        creator_id=state["id"],
        display_name=state["name"],
        followers=int(state["followers"]),
        mcn=state["mcn"],
        categories=categories_of(state, s),
        score=s.total,
        gmv_minor=s.net_gmv_minor,
        gpm_minor=s.gpm_minor,
        category_scores=dict(s.category_scores),
        tier=s.tier,
        flagged=bool(s.flags),
    )


def creator_pb(state: State, s: Score, ranks: dict[str, int] | None = None) -> creators_pb2.Creator:
    currency = state["currency"]
    message = creators_pb2.Creator(
        creator_id=state["id"],
        display_name=state["name"],
        followers=int(state["followers"]),
        mcn_agency=state["mcn"],
        categories=list(categories_of(state, s)),
        score=s.total,
        components=creators_pb2.ScoreComponents(**s.components),
        tier=s.tier,
        formula_version=FORMULA_VERSION,
        gmv=money_pb2.Money(amount_minor=s.net_gmv_minor, currency=currency),
        gpm_minor=s.gpm_minor,
        flags=s.flags,
    )
    for category in sorted(s.category_scores, key=lambda c: -s.category_scores[c]):
        message.category_strengths.add(
            category_id=category,
            score=s.category_scores[category],
            gmv=money_pb2.Money(amount_minor=s.category_gmv.get(category, 0), currency=currency),
            rank=(ranks or {}).get(category, 0),
        )
    if state["updated_at"]:
        message.updated_at.FromDatetime(datetime.fromtimestamp(state["updated_at"], UTC))
    sessions, peak, last_started = state.get("live", [0, 0, 0.0])
    message.live.sessions = int(sessions)
    message.live.peak_viewers = int(peak)
    if last_started:
        message.live.last_started_at.FromDatetime(datetime.fromtimestamp(last_started, UTC))
    message.ad_sales.gmv.amount_minor = s.ad_gmv_minor
    message.ad_sales.gmv.currency = currency
    message.ad_sales.orders = int(state.get("ad_orders", 0))
    message.ad_sales.organic_share = s.organic_share
    return message


def summary_pb(s: CreatorSummary) -> creators_pb2.Creator:
    """A search hit: what the index holds (no components; GetCreator has the full story)."""
    return creators_pb2.Creator(
        creator_id=s.creator_id,
        display_name=s.display_name,
        followers=s.followers,
        mcn_agency=s.mcn,
        categories=list(s.categories),
        score=s.score,
        tier=s.tier,
        formula_version=FORMULA_VERSION,
        gmv=money_pb2.Money(amount_minor=s.gmv_minor),
        gpm_minor=s.gpm_minor,
        flags=["FLAGGED"] if s.flagged else [],
    )
