"""Faust agents: social profiles, content stats and sales update each creator's state table.

Orders arrive keyed by order id; the orders agent re-keys each creator's share onto
creators.sales.v1 so that all of a creator's inputs meet in one partition, where the table
lives. Every update is deduplicated by event id inside the creator's own state (state.py).
"""

from __future__ import annotations

import asyncio
import copy
import gc
import logging
import time
import uuid
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message

from shopstream.commerce.v1 import order_events_pb2
from shopstream.creators.v1 import creators_pb2
from shopstream.social.v1 import creators_pb2 as social
from shopstream_creator_score.board import ScoreBoard
from shopstream_creator_score.domain import state as st
from shopstream_creator_score.domain.formula import score
from shopstream_creator_score.metrics import CreatorScoreMetrics
from shopstream_creator_score.settings import CreatorScoreSettings
from shopstream_platform.faust_app import (
    agent_dispatcher,
    make_faust_app,
    protobuf_agent,
    run_faust_app,
)
from shopstream_platform.kafka.cloudevents import CloudEventMeta
from shopstream_platform.kafka.dispatch import Dispatcher
from shopstream_platform.kafka.dlq import DeadLetterPublisher
from shopstream_platform.kafka.events import Event, InvalidEventError, Outcome
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.metrics import PlatformMetrics

log = logging.getLogger(__name__)

PROFILES_TOPIC = "social.creator-profiles.v1"
CONTENT_TOPIC = "social.content-stats.v1"
ORDERS_TOPIC = "commerce.orders.v1"
SALES_TOPIC = "creators.sales.v1"
TABLE_PARTITIONS = 6
LOCK_STRIPES = 1_024
_SALE_NAMESPACE = uuid.UUID("0b6f0d53-3a51-47a5-9a6e-3f7f3c9c1d22")


def _seconds(ts: Any) -> float:
    return float(ts.seconds) + float(ts.nanos) / 1e9


class ScoreStreams:
    def __init__(
        self,
        settings: CreatorScoreSettings,
        producer: EventProducer,
        dead_letters: DeadLetterPublisher,
        board: ScoreBoard,
        metrics: CreatorScoreMetrics,
        platform_metrics: PlatformMetrics,
    ) -> None:
        self.settings = settings
        self.board = board
        self.metrics = metrics
        self._producer = producer
        self._half_life_s = settings.half_life_days * 86_400.0
        self.app = make_faust_app(
            settings.faust_app_id,
            settings.kafka,
            store=settings.store,
            data_dir=settings.data_dir,
            partitions=TABLE_PARTITIONS,
        )
        self.creators = self.app.Table("creators", default=None, partitions=TABLE_PARTITIONS)
        self._locks = [asyncio.Lock() for _ in range(LOCK_STRIPES)]

        def dispatcher(name: str, routes: dict[type[Message], Any]) -> Dispatcher:
            return agent_dispatcher(
                settings.faust_app_id,
                name,
                routes,
                dead_letters,
                platform_metrics,
                settings.consumer,
            )

        protobuf_agent(
            self.app,
            PROFILES_TOPIC,
            dispatcher("profiles", {social.CreatorProfile: self.on_profile}),
            platform_metrics,
        )
        protobuf_agent(
            self.app,
            CONTENT_TOPIC,
            dispatcher("content", {social.ContentStats: self.on_content}),
            platform_metrics,
        )
        protobuf_agent(
            self.app,
            SALES_TOPIC,
            dispatcher("sales", {creators_pb2.CreatorSale: self.on_sale}),
            platform_metrics,
        )
        protobuf_agent(
            self.app,
            ORDERS_TOPIC,
            dispatcher(
                "orders",
                {
                    order_events_pb2.OrderPaid: self.on_order,
                    order_events_pb2.OrderRefunded: self.on_order,
                },
            ),
            platform_metrics,
        )

    # --- lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        await run_faust_app(self.app, self.settings.kafka)

    async def recovered(self) -> None:
        """Tables restored from their changelogs and the index rebuilt from them."""
        started = time.monotonic()
        tables: Any = self.app.tables
        # Faust's own wait returns at once if recovery has not started yet: poll its flag.
        while not tables.recovery.completed.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        for state in self.creators.values():
            if state is not None:
                self.board.load(state, score(state, state["updated_at"], self._half_life_s))
        self.metrics.creators.set(len(self.board.index))
        # A million long-lived summaries: keep full GC passes over them out of request latency.
        gc.collect()
        gc.freeze()
        self.metrics.recovery_seconds.set(time.monotonic() - started)
        log.info("creator tables recovered", extra={"creators": len(self.board.index)})

    def state_of(self, creator_id: str) -> st.State | None:
        found = self.creators.get(creator_id)
        return copy.deepcopy(found) if found is not None else None

    # --- updates --------------------------------------------------------------------------

    async def _update(
        self, event: Event[Message], creator_id: str, source: str, apply: Callable[[st.State], None]
    ) -> Outcome:
        if not creator_id:
            raise InvalidEventError("creator_id is empty")
        if event.key and event.key != creator_id:
            raise InvalidEventError(
                f"record key {event.key!r} is not the creator id {creator_id!r}"
            )
        # Agents of different topics run concurrently; the read-modify-write of one creator's
        # state spans an await (publishing), so updates of one creator take turns.
        async with self._locks[zlib.crc32(creator_id.encode()) % len(self._locks)]:
            current = self.creators.get(creator_id)
            state = copy.deepcopy(current) if current is not None else st.new_state(creator_id)
            if st.seen(state, event.meta.id):
                return Outcome.DUPLICATE
            apply(state)
            result = score(state, state["updated_at"], self._half_life_s)
            if await self.board.update(state, result, event.meta.id):
                state["published"] = result.total
            self.creators[creator_id] = state
        self.metrics.inputs.labels(source).inc()
        self.metrics.creators.set(len(self.board.index))
        self.metrics.freshness.observe(max(0.0, time.time() - event.meta.time.timestamp()))
        return Outcome.PROCESSED

    async def on_profile(self, event: Event[Message]) -> Outcome:
        p = event.message
        assert isinstance(p, social.CreatorProfile)
        if p.followers < 0:
            raise InvalidEventError("followers must not be negative")
        at = _seconds(p.at) if p.HasField("at") else event.meta.time.timestamp()
        return await self._update(
            event,
            p.creator_id,
            "profiles",
            lambda s: st.apply_profile(
                s,
                name=p.display_name,
                followers=p.followers,
                mcn=p.mcn_agency,
                declared=list(p.declared_categories),
                at=at,
            ),
        )

    async def on_content(self, event: Event[Message]) -> Outcome:
        c = event.message
        assert isinstance(c, social.ContentStats)
        if min(c.views, c.likes, c.comments, c.shares) < 0 or not c.content_id:
            raise InvalidEventError("content_id is required and counters must not be negative")
        at = _seconds(c.at) if c.HasField("at") else event.meta.time.timestamp()
        counters = st.ContentCounters(
            c.content_id,
            _seconds(c.published_at) if c.HasField("published_at") else at,
            c.views,
            c.likes,
            c.comments,
            c.shares,
        )
        return await self._update(
            event,
            c.creator_id,
            "content",
            lambda s: st.apply_content(s, counters, at, self._half_life_s),
        )

    async def on_sale(self, event: Event[Message]) -> Outcome:
        sale = event.message
        assert isinstance(sale, creators_pb2.CreatorSale)
        at = _seconds(sale.at) if sale.HasField("at") else event.meta.time.timestamp()
        return await self._update(
            event,
            sale.creator_id,
            "sales",
            lambda s: st.apply_sale(
                s,
                amount_minor=sale.amount.amount_minor,
                by_category=dict(sale.by_category),
                currency=sale.amount.currency,
                at=at,
                half_life_s=self._half_life_s,
            ),
        )

    async def on_order(self, event: Event[Message]) -> Outcome:
        """Re-key each attributed creator's share of a paid or refunded order by creator."""
        message = event.message
        refund = isinstance(message, order_events_pb2.OrderRefunded)
        order = message.order  # type: ignore[attr-defined]
        shares: dict[str, dict[str, int]] = {}
        currency = order.total.currency
        if refund:
            refunded = {line.line_id: line.amount.amount_minor for line in message.lines}  # type: ignore[attr-defined]
            for line in order.lines:
                if line.attribution.creator_id and line.line_id in refunded:
                    by_cat = shares.setdefault(line.attribution.creator_id, {})
                    by_cat[line.category_id] = (
                        by_cat.get(line.category_id, 0) - refunded[line.line_id]
                    )
        else:
            for line in order.lines:
                if line.attribution.creator_id:
                    by_cat = shares.setdefault(line.attribution.creator_id, {})
                    by_cat[line.category_id] = (
                        by_cat.get(line.category_id, 0) + line.line_total.amount_minor
                    )
        at = order.updated_at if order.HasField("updated_at") else None
        sends = []
        for creator_id, by_cat in sorted(shares.items()):
            sale = creators_pb2.CreatorSale(
                sale_id=f"{event.meta.id}:{creator_id}",
                creator_id=creator_id,
                order_id=order.order_id,
                by_category={c: a for c, a in by_cat.items() if c},
                refund=refund,
            )
            sale.amount.amount_minor = sum(by_cat.values())
            sale.amount.currency = currency
            if at is not None:
                sale.at.CopyFrom(at)
            base = self._producer.meta_for(sale, subject=creator_id)
            # Same id on redelivery of the order event, so the sales agent counts it once.
            meta = CloudEventMeta(
                id=str(uuid.uuid5(_SALE_NAMESPACE, sale.sale_id)),
                type=base.type,
                source=base.source,
                time=datetime.fromtimestamp(_seconds(at), UTC) if at is not None else base.time,
                traceparent=base.traceparent,
                subject=creator_id,
            )
            sends.append(self._producer.publish_and_wait(SALES_TOPIC, creator_id, sale, meta=meta))
        await asyncio.gather(*sends)
        return Outcome.PROCESSED if sends else Outcome.IGNORED
