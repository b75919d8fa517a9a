"""Live shopping: sessions with pinned products and stats (viewers, orders, GMV, GPM), in total
and per product, kept current."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream.commerce.v1 import live_pb2
from shopstream.social.v1 import live_pb2 as social
from shopstream_commerce import convert
from shopstream_commerce.domain import limits
from shopstream_commerce.domain.limits import bounded
from shopstream_commerce.domain.records import LiveRecord, OrderRecord
from shopstream_commerce.metrics import CommerceMetrics
from shopstream_commerce.settings import CommerceSettings
from shopstream_commerce.store import repository as repo
from shopstream_platform.db.database import Database
from shopstream_platform.db.outbox import Outbox
from shopstream_platform.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from shopstream_platform.grpc.auth import Principal, ensure_acts_for
from shopstream_platform.ids import new_id
from shopstream_platform.kafka.events import Event, InvalidEventError

LIVE_TOPIC = "commerce.live.v1"
LIVE, ENDED = live_pb2.LIVE_SESSION_STATE_LIVE, live_pb2.LIVE_SESSION_STATE_ENDED
SCHEDULED = live_pb2.LIVE_SESSION_STATE_SCHEDULED


def _now() -> datetime:
    return datetime.now(UTC)


class Live:
    def __init__(
        self, db: Database, outbox: Outbox, metrics: CommerceMetrics, settings: CommerceSettings
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.metrics = metrics
        self.settings = settings

    @staticmethod
    def _check_new(principal: Principal, creator_id: str, title: str, pinned: list[str]) -> None:
        if not creator_id:
            raise InvalidArgumentError("creator_id", "is required")
        bounded("creator_id", creator_id, limits.ID)
        if not title.strip() or len(title) > limits.TITLE:
            raise InvalidArgumentError("title", f"is required (at most {limits.TITLE} characters)")
        if len(pinned) > limits.PINNED:
            raise InvalidArgumentError("pinned_product_ids", f"at most {limits.PINNED} products")
        for i, product_id in enumerate(pinned):
            bounded(f"pinned_product_ids[{i}]", product_id, limits.ID)
        ensure_acts_for(principal, "creator", creator_id)

    async def schedule(
        self,
        principal: Principal,
        creator_id: str,
        title: str,
        pinned: list[str],
        starts_at: datetime | None,
    ) -> LiveRecord:
        """Announce a session for later: SCHEDULED, `LiveSessionScheduled`; it goes live when
        its creator starts it (StartLiveSession with its id)."""
        self._check_new(principal, creator_id, title, pinned)
        now = _now()
        earliest = now + timedelta(seconds=self.settings.live_schedule_min_lead_s)
        latest = now + timedelta(seconds=self.settings.live_schedule_max_lead_s)
        if starts_at is None or not earliest <= starts_at <= latest:
            raise InvalidArgumentError(
                "starts_at",
                f"must be between {earliest.isoformat()} and {latest.isoformat()}",
            )
        record = LiveRecord(
            new_id("live"),
            creator_id,
            title.strip(),
            SCHEDULED,
            starts_at,
            None,
            0,
            0,
            0,
            0,
            0,
            "",
            scheduled_for=starts_at,
        )
        return await self._insert(record, pinned, now, scheduled=True)

    async def start(
        self,
        principal: Principal,
        creator_id: str,
        title: str,
        pinned: list[str],
        live_session_id: str = "",
    ) -> LiveRecord:
        """Go live now: a new session, or the creator's scheduled one (`live_session_id`)."""
        if live_session_id:
            return await self._start_scheduled(principal, live_session_id, pinned)
        self._check_new(principal, creator_id, title, pinned)
        now = _now()
        record = LiveRecord(
            new_id("live"), creator_id, title.strip(), LIVE, now, None, 0, 0, 0, 0, 0, ""
        )
        return await self._insert(record, pinned, now, scheduled=False)

    async def _insert(
        self, record: LiveRecord, pinned: list[str], now: datetime, *, scheduled: bool
    ) -> LiveRecord:
        async with self.db.transaction() as session:
            await repo.insert_live(session, record)
            for product_id in dict.fromkeys(pinned):
                await repo.pin(session, record.live_session_id, product_id, now)
            created = await self._load(session, record.live_session_id)
            event = (
                live_pb2.LiveSessionScheduled(session=convert.live_pb(created))
                if scheduled
                else live_pb2.LiveSessionStarted(session=convert.live_pb(created))
            )
            await self.outbox.add(session, LIVE_TOPIC, created.live_session_id, event)
        return created

    async def _start_scheduled(
        self, principal: Principal, live_session_id: str, pinned: list[str]
    ) -> LiveRecord:
        for i, product_id in enumerate(pinned):
            bounded(f"pinned_product_ids[{i}]", product_id, limits.ID)
        async with self.db.transaction() as session:
            record = await self._load(session, live_session_id)
            ensure_acts_for(principal, "creator", record.creator_id)
            now = _now()
            if not await repo.start_scheduled(session, live_session_id, now, LIVE, SCHEDULED):
                raise FailedPreconditionError(f"live session {live_session_id} is not scheduled")
            if len(set(record.pinned) | set(pinned)) > limits.PINNED:
                raise InvalidArgumentError(
                    "pinned_product_ids", f"at most {limits.PINNED} products"
                )
            for product_id in dict.fromkeys(pinned):
                await repo.pin(session, live_session_id, product_id, now)
            started = await self._load(session, live_session_id)
            await self.outbox.add(
                session,
                LIVE_TOPIC,
                live_session_id,
                live_pb2.LiveSessionStarted(session=convert.live_pb(started)),
            )
        return started

    async def _load(self, session: AsyncSession, live_session_id: str) -> LiveRecord:
        if not live_session_id:
            raise InvalidArgumentError("live_session_id", "is required")
        bounded("live_session_id", live_session_id, limits.ID)
        record = await repo.load_live(session, live_session_id)
        if record is None:
            raise NotFoundError("live session", live_session_id)
        return record

    async def pin(self, principal: Principal, live_session_id: str, product_id: str) -> LiveRecord:
        if not product_id:
            raise InvalidArgumentError("product_id", "is required")
        bounded("product_id", product_id, limits.ID)
        async with self.db.transaction() as session:
            record = await self._load(session, live_session_id)
            ensure_acts_for(principal, "creator", record.creator_id)
            if record.state not in (LIVE, SCHEDULED):
                raise FailedPreconditionError(f"live session {live_session_id} has ended")
            now = _now()
            if await repo.pin(session, live_session_id, product_id, now):
                await self.outbox.add(
                    session,
                    LIVE_TOPIC,
                    live_session_id,
                    live_pb2.ProductPinned(
                        live_session_id=live_session_id,
                        product_id=product_id,
                        pinned_at=convert.timestamp(now),
                    ),
                )
            return await self._load(session, live_session_id)

    async def end(self, principal: Principal, live_session_id: str) -> LiveRecord:
        async with self.db.transaction() as session:
            record = await self._load(session, live_session_id)
            ensure_acts_for(principal, "creator", record.creator_id)
            if not await repo.end_live(session, live_session_id, _now(), ENDED, LIVE):
                raise FailedPreconditionError(f"live session {live_session_id} has already ended")
            ended = await self._load(session, live_session_id)
            await self.outbox.add(
                session,
                LIVE_TOPIC,
                live_session_id,
                live_pb2.LiveSessionEnded(session=convert.live_pb(ended)),
            )
        return ended

    async def get(self, live_session_id: str) -> LiveRecord:
        async with self.db.read() as session:
            return await self._load(session, live_session_id)

    async def _stats_event(self, session: AsyncSession, live_session_id: str) -> None:
        record = await self._load(session, live_session_id)
        await self.outbox.add(
            session,
            LIVE_TOPIC,
            live_session_id,
            live_pb2.LiveStatsUpdated(
                live_session_id=live_session_id,
                creator_id=record.creator_id,
                stats=convert.live_stats_pb(record),
                at=convert.timestamp(_now()),
                products=convert.live_products_pb(record),
            ),
        )

    async def add_sale(self, session: AsyncSession, order: OrderRecord) -> None:
        """A paid order counts once per live session its lines name, with those lines' value."""
        per_session: dict[str, int] = defaultdict(int)
        per_product: dict[tuple[str, str], tuple[int, int]] = defaultdict(lambda: (0, 0))
        for line in order.lines:
            if line.attribution.live_session_id:
                per_session[line.attribution.live_session_id] += line.total_minor
                key = (line.attribution.live_session_id, line.product_id)
                units, amount = per_product[key]
                per_product[key] = (units + line.quantity, amount + line.total_minor)
        for (live_session_id, product_id), (units, amount) in sorted(per_product.items()):
            await repo.add_live_product_sale(
                session, live_session_id, product_id, units, amount, order.currency
            )
        for live_session_id, amount in sorted(per_session.items()):
            if await repo.add_live_sale(session, live_session_id, amount, order.currency):
                await self._stats_event(session, live_session_id)
                self.metrics.live_gmv.labels(order.currency).inc(amount)

    async def on_view_stats(self, event: Event[Message], session: AsyncSession) -> None:
        stats = event.message
        assert isinstance(stats, social.LiveViewStats)
        if not stats.live_session_id:
            raise InvalidEventError("live_session_id is empty")
        if stats.current_viewers < 0 or stats.total_views < 0:
            raise InvalidEventError("viewer counts must not be negative")
        if await repo.set_live_views(
            session, stats.live_session_id, stats.current_viewers, stats.total_views
        ):
            await self._stats_event(session, stats.live_session_id)
