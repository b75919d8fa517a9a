"""CreatorScoreService over gRPC: reads the score board, the creator tables and the copies of
the creators other processes of the deployment own (stream/copies.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from shopstream.common.v1 import paging_pb2
from shopstream.creators.v1 import creator_score_service_pb2 as pb
from shopstream.creators.v1 import creator_score_service_pb2_grpc, creators_pb2
from shopstream_creator_score import convert
from shopstream_creator_score.api.privacy import AdSalesPrivacy, AdSalesReleaser
from shopstream_creator_score.board import ScoreBoard, version_of
from shopstream_creator_score.domain.formula import score
from shopstream_creator_score.search.index import SortKey
from shopstream_creator_score.settings import CreatorScoreSettings
from shopstream_creator_score.stream.agents import ScoreStreams
from shopstream_creator_score.stream.copies import CreatorCopies
from shopstream_platform.errors import InvalidArgumentError, NotFoundError
from shopstream_platform.grpc.auth import current_principal
from shopstream_platform.paging import decode_cursor, encode_cursor

Context = Any
SORT_KEYS: dict[int, SortKey] = {
    pb.SORT_BY_UNSPECIFIED: "score",
    pb.SORT_BY_SCORE: "score",
    pb.SORT_BY_FOLLOWERS: "followers",
    pb.SORT_BY_GMV: "gmv",
    pb.SORT_BY_GPM: "gpm",
}
MAX_TOP = 100


class CreatorScoreServicer(creator_score_service_pb2_grpc.CreatorScoreServiceServicer):
    def __init__(
        self,
        board: ScoreBoard,
        streams: ScoreStreams,
        copies: CreatorCopies,
        settings: CreatorScoreSettings,
    ) -> None:
        self._board = board
        self._streams = streams
        self._copies = copies
        self._settings = settings
        self._half_life_s = settings.half_life_days * 86_400.0
        # Ad-credited sales reach callers only thresholded and noised (api/privacy.py).
        self._ad_sales = AdSalesReleaser(
            settings.auth.jwt_secret.get_secret_value().encode(), AdSalesPrivacy()
        )

    async def GetCreator(
        self, request: pb.GetCreatorRequest, context: Context
    ) -> pb.GetCreatorResponse:
        if not request.creator_id:
            raise InvalidArgumentError("creator_id", "is required")
        creator = self._creator(request.creator_id)
        if creator is None:
            raise NotFoundError("creator", request.creator_id)
        self._ad_sales.apply(creator, current_principal(), datetime.now(UTC))
        return pb.GetCreatorResponse(creator=creator)

    def _creator(self, creator_id: str) -> creators_pb2.Creator | None:
        """The newer of this process's own state and the copy of the owner's: a creator of a
        partition another process owns, or one this process has just gained and not yet
        recovered, is answered from the copy (same state, so the same answer)."""
        state = self._streams.state_of(creator_id)
        copied = self._copies.get(creator_id)
        if copied is not None and (state is None or copied[0] > version_of(state)):
            creator = copied[1]
            for strength in creator.category_strengths:
                strength.rank = self._board.rank(strength.category_id, creator_id)
            return creator
        if state is None:
            return None
        result = score(state, state["updated_at"], self._half_life_s)
        ranks = {c: self._board.rank(c, creator_id) for c in result.category_scores}
        return convert.creator_pb(state, result, ranks)

    async def SearchCreators(
        self, request: pb.SearchCreatorsRequest, context: Context
    ) -> pb.SearchCreatorsResponse:
        if request.min_followers < 0 or request.max_followers < 0:
            raise InvalidArgumentError("min_followers", "follower bounds must not be negative")
        if request.max_followers and request.min_followers > request.max_followers:
            raise InvalidArgumentError("max_followers", "must be at least min_followers")
        if not 0 <= request.min_score <= 100:
            raise InvalidArgumentError("min_score", "must be 0..100")
        if request.sort_by not in SORT_KEYS:
            raise InvalidArgumentError("sort_by", "unknown sort order")
        if request.page.page_size < 0:
            raise InvalidArgumentError("page.page_size", "must not be negative")
        size = min(
            request.page.page_size or self._settings.search_default_page_size,
            self._settings.search_max_page_size,
        )
        cursor = decode_cursor(request.page.page_token)
        if cursor and not cursor.isdigit():
            raise InvalidArgumentError("page.page_token", "is not a token from a previous page")
        offset = int(cursor or 0)
        found, total = self._board.index.search(
            category=request.category_id,
            min_followers=request.min_followers,
            max_followers=request.max_followers,
            mcn=request.mcn_agency,
            min_score=request.min_score,
            text=request.text,
            sort=SORT_KEYS[request.sort_by],
            offset=offset,
            limit=size,
        )
        next_token = encode_cursor(str(offset + size)) if offset + size < total else ""
        return pb.SearchCreatorsResponse(
            creators=[convert.summary_pb(s) for s in found],
            page=paging_pb2.PageInfo(next_page_token=next_token, total_size=total),
        )

    async def TopCreators(
        self, request: pb.TopCreatorsRequest, context: Context
    ) -> pb.TopCreatorsResponse:
        if not request.category_id:
            raise InvalidArgumentError("category_id", "is required")
        if not 0 <= request.limit <= MAX_TOP:
            raise InvalidArgumentError("limit", f"must be 1..{MAX_TOP}")
        found = self._board.index.top(request.category_id, request.limit or 10)
        return pb.TopCreatorsResponse(creators=[convert.summary_pb(s) for s in found])

    async def WatchScores(
        self, request: pb.WatchScoresRequest, context: Context
    ) -> AsyncIterator[pb.WatchScoresResponse]:
        principal = current_principal()
        watcher = self._board.watch(request.category_id, request.creator_id)
        try:
            while True:
                change = await watcher.queue.get()
                released = type(change)()
                released.CopyFrom(change)  # shared by every watcher: never changed in place
                self._ad_sales.apply(released.creator, principal, datetime.now(UTC))
                yield pb.WatchScoresResponse(change=released)
        finally:
            self._board.unwatch(watcher)
