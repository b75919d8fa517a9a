"""SearchCreators and TopCreators: the creator marketplace over the score board's index
(the creators this process owns and the copies of the others')."""

from __future__ import annotations

from dataclasses import dataclass

from shopstream_creator_score.search.index import CreatorSummary, SortKey
from shopstream_creator_score.usecases.score_board import ScoreBoard
from shopstream_platform.errors import InvalidArgumentError
from shopstream_platform.paging import decode_cursor, encode_cursor

MAX_TOP = 100


@dataclass(frozen=True)
class SearchQuery:
    category: str = ""
    min_followers: int = 0
    max_followers: int = 0  # 0: no upper bound
    mcn: str = ""
    min_score: float = 0.0
    text: str = ""
    sort: SortKey | None = "score"  # None: an order the API does not know
    page_size: int = 0  # 0: the default page size
    page_token: str = ""


@dataclass(frozen=True)
class SearchPage:
    creators: list[CreatorSummary]
    next_page_token: str
    total: int


class Marketplace:
    def __init__(self, board: ScoreBoard, default_page_size: int, max_page_size: int) -> None:
        self._board = board
        self._default_page_size = default_page_size
        self._max_page_size = max_page_size

    def search(self, query: SearchQuery) -> SearchPage:
        if query.min_followers < 0 or query.max_followers < 0:
            raise InvalidArgumentError("min_followers", "follower bounds must not be negative")
        if query.max_followers and query.min_followers > query.max_followers:
            raise InvalidArgumentError("max_followers", "must be at least min_followers")
        if not 0 <= query.min_score <= 100:
            raise InvalidArgumentError("min_score", "must be 0..100")
        if query.sort is None:
            raise InvalidArgumentError("sort_by", "unknown sort order")
        if query.page_size < 0:
            raise InvalidArgumentError("page.page_size", "must not be negative")
        size = min(query.page_size or self._default_page_size, self._max_page_size)
        cursor = decode_cursor(query.page_token)
        if cursor and not cursor.isdigit():
            raise InvalidArgumentError("page.page_token", "is not a token from a previous page")
        offset = int(cursor or 0)
        found, total = self._board.index.search(
            category=query.category,
            min_followers=query.min_followers,
            max_followers=query.max_followers,
            mcn=query.mcn,
            min_score=query.min_score,
            text=query.text,
            sort=query.sort,
            offset=offset,
            limit=size,
        )
        next_token = encode_cursor(str(offset + size)) if offset + size < total else ""
        return SearchPage(found, next_token, total)

    def top(self, category: str, limit: int) -> list[CreatorSummary]:
        """The category's best creators by their standing in it (10 when `limit` is 0)."""
        if not category:
            raise InvalidArgumentError("category_id", "is required")
        if not 0 <= limit <= MAX_TOP:
            raise InvalidArgumentError("limit", f"must be 1..{MAX_TOP}")
        return self._board.index.top(category, limit or 10)
