"""CreatorScoreService over gRPC: requests to use cases and results to responses, nothing more."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from shopstream.common.v1 import paging_pb2
from shopstream.creators.v1 import creator_score_service_pb2 as pb
from shopstream.creators.v1 import creator_score_service_pb2_grpc
from shopstream_creator_score import convert
from shopstream_creator_score.search.index import SortKey
from shopstream_creator_score.usecases.creators import Creators
from shopstream_creator_score.usecases.marketplace import Marketplace, SearchQuery
from shopstream_creator_score.usecases.watching import Watching
from shopstream_platform.grpc.auth import current_principal

Context = Any
SORT_KEYS: dict[int, SortKey] = {
    pb.SORT_BY_UNSPECIFIED: "score",
    pb.SORT_BY_SCORE: "score",
    pb.SORT_BY_FOLLOWERS: "followers",
    pb.SORT_BY_GMV: "gmv",
    pb.SORT_BY_GPM: "gpm",
}


class CreatorScoreServicer(creator_score_service_pb2_grpc.CreatorScoreServiceServicer):
    def __init__(self, creators: Creators, marketplace: Marketplace, watching: Watching) -> None:
        self._creators = creators
        self._marketplace = marketplace
        self._watching = watching

    async def GetCreator(
        self, request: pb.GetCreatorRequest, context: Context
    ) -> pb.GetCreatorResponse:
        creator = self._creators.get(current_principal(), request.creator_id)
        return pb.GetCreatorResponse(creator=creator)

    async def SearchCreators(
        self, request: pb.SearchCreatorsRequest, context: Context
    ) -> pb.SearchCreatorsResponse:
        page = self._marketplace.search(
            SearchQuery(
                category=request.category_id,
                min_followers=request.min_followers,
                max_followers=request.max_followers,
                mcn=request.mcn_agency,
                min_score=request.min_score,
                text=request.text,
                sort=SORT_KEYS.get(request.sort_by),
                page_size=request.page.page_size,
                page_token=request.page.page_token,
            )
        )
        return pb.SearchCreatorsResponse(
            creators=[convert.summary_pb(s) for s in page.creators],
            page=paging_pb2.PageInfo(next_page_token=page.next_page_token, total_size=page.total),
        )

    async def TopCreators(
        self, request: pb.TopCreatorsRequest, context: Context
    ) -> pb.TopCreatorsResponse:
        found = self._marketplace.top(request.category_id, request.limit)
        return pb.TopCreatorsResponse(creators=[convert.summary_pb(s) for s in found])

    async def WatchScores(
        self, request: pb.WatchScoresRequest, context: Context
    ) -> AsyncIterator[pb.WatchScoresResponse]:
        # Closed with this stream, whatever ends it, so the watcher leaves the board at once.
        changes = self._watching.changes(
            current_principal(), request.category_id, request.creator_id
        )
        async with aclosing(changes):
            async for change in changes:
                yield pb.WatchScoresResponse(change=change)
