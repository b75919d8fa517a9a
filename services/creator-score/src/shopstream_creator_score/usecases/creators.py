"""GetCreator: one creator with its score breakdown, category ranks and released ad sales.

A process answers for every creator of its deployment: from its own state (the creators it
owns) or from the copy of the owner's (stream/copies.py), whichever is newer.
"""

from __future__ import annotations

from collections.abc import Callable

from shopstream.creators.v1 import creators_pb2
from shopstream_creator_score import convert
from shopstream_creator_score.domain.formula import score
from shopstream_creator_score.domain.state import State
from shopstream_creator_score.usecases.ad_sales import AdSalesReleaser
from shopstream_creator_score.usecases.score_board import ScoreBoard, version_of
from shopstream_platform.clock import Clock, utc_now
from shopstream_platform.errors import InvalidArgumentError, NotFoundError
from shopstream_platform.grpc.auth import Principal

# The copy of a creator another process owns: its state's watermark and its exact `Creator`.
CopyOf = Callable[[str], tuple[int, creators_pb2.Creator] | None]


class Creators:
    def __init__(
        self,
        board: ScoreBoard,
        state_of: Callable[[str], State | None],
        copy_of: CopyOf,
        ad_sales: AdSalesReleaser,
        half_life_s: float,
        now: Clock = utc_now,
    ) -> None:
        """`state_of`: this process's own state of a creator (a copy of it, or None);
        `copy_of`: the copy of the owner's, when another process owns it."""
        self._board = board
        self._state_of = state_of
        self._copy_of = copy_of
        self._ad_sales = ad_sales
        self._half_life_s = half_life_s
        self._now = now

    def get(self, principal: Principal | None, creator_id: str) -> creators_pb2.Creator:
        """The creator as the caller may see it: ad sales released (exact only for audit)."""
        if not creator_id:
            raise InvalidArgumentError("creator_id", "is required")
        creator = self._exact(creator_id)
        if creator is None:
            raise NotFoundError("creator", creator_id)
        self._ad_sales.apply(creator, principal, self._now())
        return creator

    def _exact(self, creator_id: str) -> creators_pb2.Creator | None:
        """The newer of this process's own state and the copy of the owner's: a creator of a
        partition another process owns, or one this process has just gained and not yet
        recovered, is answered from the copy (same state, so the same answer)."""
        state = self._state_of(creator_id)
        copied = self._copy_of(creator_id)
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
