"""WatchScores: the score changes of a category or a creator as they happen, each released for
the caller (ad sales thresholded and noised, usecases/ad_sales.py)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from shopstream.creators.v1 import creators_pb2
from shopstream_creator_score.usecases.ad_sales import AdSalesReleaser
from shopstream_creator_score.usecases.score_board import ScoreBoard
from shopstream_platform.clock import Clock, utc_now
from shopstream_platform.grpc.auth import Principal


class Watching:
    def __init__(
        self,
        board: ScoreBoard,
        ad_sales: AdSalesReleaser,
        now: Clock = utc_now,
    ) -> None:
        self._board = board
        self._ad_sales = ad_sales
        self._now = now

    async def changes(
        self, principal: Principal | None, category: str, creator_id: str
    ) -> AsyncGenerator[creators_pb2.CreatorScoreChanged, None]:
        """Until the caller stops reading; a watcher too slow to keep up is cut off by the
        board (and then waits here for nothing more)."""
        watcher = self._board.watch(category, creator_id)
        try:
            while True:
                change = await watcher.queue.get()
                released = creators_pb2.CreatorScoreChanged()
                released.CopyFrom(change)  # shared by every watcher: never changed in place
                self._ad_sales.apply(released.creator, principal, self._now())
                yield released
        finally:
            self._board.unwatch(watcher)
