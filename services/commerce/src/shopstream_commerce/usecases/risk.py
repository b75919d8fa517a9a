"""Risk signals from other services, kept for the commission settlement (rules: domain/risk.py).

creators.scores.v1 carries each creator's flags with every score change (the latest by event
time wins); ads.invalid-traffic.v1 names the ad clicks screened as invalid. At settlement a
creator flagged with one of `risk_flags`, or a line whose ad click was flagged, has its
commission moved to the frozen account instead of paid out.
"""

from __future__ import annotations

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream.ads.v1 import ads_events_pb2 as ads
from shopstream.creators.v1 import creators_pb2 as creators
from shopstream_commerce.domain import risk
from shopstream_commerce.store import repository as repo
from shopstream_commerce.usecases.context import Deps
from shopstream_platform.kafka.events import Event, InvalidEventError

SCORES_TOPIC = "creators.scores.v1"
INVALID_TRAFFIC_TOPIC = "ads.invalid-traffic.v1"


class RiskSignals:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def on_score_changed(self, event: Event[Message], session: AsyncSession) -> None:
        message = event.message
        assert isinstance(message, creators.CreatorScoreChanged)
        creator = message.creator
        if not creator.creator_id:
            raise InvalidEventError("creator.creator_id is empty")
        as_of = (
            creator.updated_at.ToDatetime(tzinfo=self.deps.now().tzinfo)
            if creator.HasField("updated_at")
            else self.deps.now()
        )
        await repo.set_creator_flags(session, creator.creator_id, list(creator.flags), as_of)

    async def on_invalid_click(self, event: Event[Message], session: AsyncSession) -> None:
        message = event.message
        assert isinstance(message, ads.InvalidTrafficFlagged)
        if not message.click_id:
            raise InvalidEventError("click_id is empty")
        reason = ads.InvalidTrafficReason.Name(message.reason).removeprefix(
            "INVALID_TRAFFIC_REASON_"
        )
        await repo.flag_click(session, message.click_id, reason, self.deps.now())

    async def freeze_reason(self, session: AsyncSession, creator_id: str, click_id: str) -> str:
        """Why this creator's commission on a line with this ad click is frozen ("" if not)."""
        flags = await repo.creator_flags(session, creator_id)
        return risk.freeze_reason(
            risk.creator_reason(flags, self.deps.settings.risk_flags),
            risk.click_reason(await repo.click_flag(session, click_id)),
        )
