"""`shopstream creators search|top|get`: the creator marketplace (CreatorScoreService)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shopstream.common.v1.paging_pb2 import PageRequest
from shopstream.creators.v1 import creator_score_service_pb2 as pb
from shopstream.creators.v1.creator_score_service_pb2_grpc import CreatorScoreServiceStub
from shopstream.creators.v1.creators_pb2 import Creator
from shopstream_cli.output import (
    emit_fields,
    emit_message,
    emit_table,
    minor_units,
    money,
    note,
    timestamp,
)
from shopstream_cli.rpc import Target, connect
from shopstream_platform.settings import AuthSettings

SORTS = {
    "score": pb.SORT_BY_SCORE,
    "followers": pb.SORT_BY_FOLLOWERS,
    "gmv": pb.SORT_BY_GMV,
    "gpm": pb.SORT_BY_GPM,
}
COLUMNS = [
    "#",
    "creator",
    "name",
    "score",
    "tier",
    "followers",
    "gmv",
    "gpm",
    "categories",
    "flags",
]
COMPONENTS = ("sales", "conversion", "engagement", "authenticity", "quality", "activity")


@dataclass(frozen=True)
class CreatorQuery:
    """SearchCreators filters as the command line gives them (empty/zero = no filter)."""

    text: str = ""
    category: str = ""
    min_followers: int = 0
    max_followers: int = 0
    mcn: str = ""
    min_score: float = 0.0
    sort: str = "score"
    limit: int = 20
    page_token: str = ""

    def request(self) -> pb.SearchCreatorsRequest:
        return pb.SearchCreatorsRequest(
            text=self.text,
            category_id=self.category,
            min_followers=self.min_followers,
            max_followers=self.max_followers,
            mcn_agency=self.mcn,
            min_score=self.min_score,
            sort_by=SORTS[self.sort],
            page=PageRequest(page_size=self.limit, page_token=self.page_token),
        )


def gpm(creator: Creator) -> str:
    """GMV per 1,000 views, in the GMV's currency."""
    if not creator.gpm_minor and not creator.gmv.currency:
        return ""
    return minor_units(creator.gpm_minor, creator.gmv.currency)


def creator_rows(creators: Sequence[Creator], first_rank: int = 1) -> list[tuple[object, ...]]:
    return [
        (
            first_rank + i,
            c.creator_id,
            c.display_name,
            f"{c.score:.1f}",
            f"L{c.tier}",
            f"{c.followers:,}",
            money(c.gmv),
            gpm(c),
            ", ".join(c.categories),
            ", ".join(c.flags),
        )
        for i, c in enumerate(creators)
    ]


def creator_fields(c: Creator) -> list[tuple[str, object]]:
    return [
        ("creator", c.creator_id),
        ("name", c.display_name),
        ("score", f"{c.score:.1f} (formula {c.formula_version or '-'})"),
        ("tier", f"L{c.tier}"),
        ("followers", f"{c.followers:,}"),
        ("mcn agency", c.mcn_agency or "-"),
        ("categories", ", ".join(c.categories) or "-"),
        ("gmv (decayed)", money(c.gmv) or "-"),
        ("gpm", gpm(c) or "-"),
        ("ad-credited gmv", _ad_sales(c)),
        ("live sessions", _live(c)),
        ("flags", ", ".join(c.flags) or "none"),
        ("updated", timestamp(c.updated_at) or "-"),
    ]


def _ad_sales(c: Creator) -> str:
    if c.ad_sales.withheld:
        return "withheld (too few ad-credited orders to show)"
    if not c.ad_sales.orders and not c.ad_sales.gmv.amount_minor:
        return "none"
    return (
        f"{money(c.ad_sales.gmv) or '0'} over {c.ad_sales.orders:,} orders "
        f"({c.ad_sales.organic_share:.0%} of gmv organic)"
        f"{' (noised)' if c.ad_sales.noised else ''}"
    )


def _live(c: Creator) -> str:
    if not c.live.sessions:
        return "none"
    return f"{c.live.sessions:,} (peak {c.live.peak_viewers:,} viewers)"


def component_rows(c: Creator) -> list[tuple[object, ...]]:
    return [(name, f"{getattr(c.components, name):.1f}") for name in COMPONENTS]


def strength_rows(c: Creator) -> list[tuple[object, ...]]:
    return [(s.category_id, f"{s.score:.1f}", money(s.gmv), s.rank) for s in c.category_strengths]


def search(target: Target, auth: AuthSettings, query: CreatorQuery, *, as_json: bool) -> int:
    with connect(target, auth) as conn:
        response = CreatorScoreServiceStub(conn.channel).SearchCreators(
            query.request(), timeout=conn.timeout, metadata=conn.metadata
        )
    if as_json:
        emit_message(response)
        return 0
    total = response.page.total_size
    counted = f" of {total}" if total >= 0 else ""
    emit_table(
        f"Creators by {query.sort} ({len(response.creators)}{counted})",
        COLUMNS,
        creator_rows(response.creators),
        as_json=False,
    )
    if response.page.next_page_token:
        note(f"more: --page-token {response.page.next_page_token}")
    return 0


def top(target: Target, auth: AuthSettings, category: str, limit: int, *, as_json: bool) -> int:
    with connect(target, auth) as conn:
        response = CreatorScoreServiceStub(conn.channel).TopCreators(
            pb.TopCreatorsRequest(category_id=category, limit=limit),
            timeout=conn.timeout,
            metadata=conn.metadata,
        )
    if as_json:
        emit_message(response)
        return 0
    emit_table(
        f"Top creators in {category} (ranked by their standing in it)",
        ["#", "creator", "name", "in category", "score", "tier", "followers", "gmv", "flags"],
        top_rows(response.creators, category),
        as_json=False,
    )
    return 0


def top_rows(creators: Sequence[Creator], category: str) -> list[tuple[object, ...]]:
    """A category's top list shows the standing it is ranked by next to the overall score."""
    rows: list[tuple[object, ...]] = []
    for i, c in enumerate(creators):
        strength = next((s for s in c.category_strengths if s.category_id == category), None)
        rows.append(
            (
                strength.rank if strength is not None and strength.rank else i + 1,
                c.creator_id,
                c.display_name,
                "-" if strength is None else f"{strength.score:.1f}",
                f"{c.score:.1f}",
                f"L{c.tier}",
                f"{c.followers:,}",
                money(c.gmv),
                ", ".join(c.flags),
            )
        )
    return rows


def get(target: Target, auth: AuthSettings, creator_id: str, *, as_json: bool) -> int:
    with connect(target, auth) as conn:
        response = CreatorScoreServiceStub(conn.channel).GetCreator(
            pb.GetCreatorRequest(creator_id=creator_id),
            timeout=conn.timeout,
            metadata=conn.metadata,
        )
    if as_json:
        emit_message(response)
        return 0
    creator = response.creator
    emit_fields(f"Creator {creator.creator_id}", creator_fields(creator))
    emit_table(
        "Score components (0-100)", ["component", "value"], component_rows(creator), as_json=False
    )
    if creator.category_strengths:
        emit_table(
            "Category standing",
            ["category", "score", "gmv", "rank"],
            strength_rows(creator),
            as_json=False,
        )
    return 0
