"""Faust agents: social profiles, content stats and re-keyed inputs update each creator's state.

Orders (key: order id), live sessions (key: session id) and ad attributions (key: campaign id)
are re-keyed per creator onto creators.inputs.v1 (rekey.py), so that all of a creator's inputs
meet in one partition, where the table lives. Every update is deduplicated by event id inside
the creator's own state (state.py).
"""

from __future__ import annotations

import asyncio
import copy
import gc
import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message

from shopstream.ads.v1 import ads_events_pb2
from shopstream.commerce.v1 import live_pb2, order_events_pb2
from shopstream.creators.v1 import creators_pb2
from shopstream.social.v1 import creators_pb2 as social
from shopstream_creator_score.board import ScoreBoard
from shopstream_creator_score.domain import state as st
from shopstream_creator_score.domain.formula import score
from shopstream_creator_score.metrics import CreatorScoreMetrics
from shopstream_creator_score.settings import CreatorScoreSettings
from shopstream_creator_score.stream import rekey
from shopstream_platform.faust_app import (
    Batching,
    agent_dispatcher,
    make_faust_app,
    protobuf_agent,
    run_faust_app,
)
from shopstream_platform.faust_batch import BatchedTable, StreamOutputs
from shopstream_platform.kafka.dlq import DeadLetterPublisher
from shopstream_platform.kafka.events import Event, InvalidEventError, Outcome
from shopstream_platform.metrics import PlatformMetrics

log = logging.getLogger(__name__)

PROFILES_TOPIC = "social.creator-profiles.v1"
CONTENT_TOPIC = "social.content-stats.v1"
ORDERS_TOPIC = "commerce.orders.v1"
LIVE_TOPIC = "commerce.live.v1"
ATTRIBUTIONS_TOPIC = "ads.attributions.v1"
INPUTS_TOPIC = "creators.inputs.v1"
INPUT_TOPICS = (
    PROFILES_TOPIC,
    CONTENT_TOPIC,
    ORDERS_TOPIC,
    LIVE_TOPIC,
    ATTRIBUTIONS_TOPIC,
    INPUTS_TOPIC,
)
TABLE_PARTITIONS = 6


def _seconds(ts: Any) -> float:
    return float(ts.seconds) + float(ts.nanos) / 1e9


def _time_of(message: Any, event: Event[Message], field: str = "at") -> float:
    """The message's own time field, or the event's CloudEvents time when it has none."""
    if message.HasField(field):
        return _seconds(getattr(message, field))
    return event.meta.time.timestamp()


class ScoreStreams:
    def __init__(
        self,
        settings: CreatorScoreSettings,
        outputs: StreamOutputs,
        dead_letters: DeadLetterPublisher,
        board: ScoreBoard,
        metrics: CreatorScoreMetrics,
        platform_metrics: PlatformMetrics,
    ) -> None:
        self.settings = settings
        self.board = board
        self.metrics = metrics
        self._outputs = outputs
        self._producer = outputs.producer
        self._half_life_s = settings.half_life_days * 86_400.0
        self.app = make_faust_app(
            settings.faust_app_id,
            settings.kafka,
            store=settings.store,
            data_dir=settings.data_dir,
            partitions=TABLE_PARTITIONS,
        )
        self.creators = BatchedTable(
            self.app.Table("creators", default=None, partitions=TABLE_PARTITIONS), outputs
        )
        # Updaters write the creators table at the end of each batch; re-keyers only publish.
        updates = Batching(flush=self.creators.flush)
        rekeys = Batching(flush=outputs.acked)

        def agent(name: str, topic: str, routes: dict[type[Message], Any], batch: Batching) -> None:
            dispatcher = agent_dispatcher(
                settings.faust_app_id,
                name,
                routes,
                dead_letters,
                platform_metrics,
                settings.consumer,
            )
            protobuf_agent(self.app, topic, dispatcher, platform_metrics, batch=batch)

        agent("profiles", PROFILES_TOPIC, {social.CreatorProfile: self.on_profile}, updates)
        agent("content", CONTENT_TOPIC, {social.ContentStats: self.on_content}, updates)
        agent(
            "inputs",
            INPUTS_TOPIC,
            {
                creators_pb2.CreatorSale: self.on_sale,
                creators_pb2.CreatorLiveSession: self.on_live_session,
                creators_pb2.CreatorAdCredit: self.on_ad_credit,
            },
            updates,
        )
        # The re-keyers: inputs keyed by something else, split per creator onto INPUTS_TOPIC.
        agent(
            "orders",
            ORDERS_TOPIC,
            {
                order_events_pb2.OrderPaid: self.rekey_order,
                order_events_pb2.OrderRefunded: self.rekey_order,
            },
            rekeys,
        )
        agent(
            "live",
            LIVE_TOPIC,
            {
                live_pb2.LiveSessionStarted: self.rekey_live,
                live_pb2.LiveSessionEnded: self.rekey_live,
            },
            rekeys,
        )
        agent(
            "attributions",
            ATTRIBUTIONS_TOPIC,
            {ads_events_pb2.Attribution: self.rekey_attribution},
            rekeys,
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
        # No await from read to write: agents of other topics cannot interleave an update.
        current = self.creators.get(creator_id)
        state = copy.deepcopy(current) if current is not None else st.new_state(creator_id)
        if st.seen(state, event.meta.id):
            return Outcome.DUPLICATE
        apply(state)
        result = score(state, state["updated_at"], self._half_life_s)
        if self.board.update(state, result, event.meta.id):
            state["published"] = result.total
        self.creators.set(creator_id, state, event.partition)
        self.metrics.inputs.labels(source).inc()
        self.metrics.creators.set(len(self.board.index))
        self.metrics.freshness.observe(max(0.0, time.time() - event.meta.time.timestamp()))
        return Outcome.PROCESSED

    async def on_profile(self, event: Event[Message]) -> Outcome:
        p = event.message
        assert isinstance(p, social.CreatorProfile)
        if p.followers < 0:
            raise InvalidEventError("followers must not be negative")
        at = _time_of(p, event)
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
        at = _time_of(c, event)
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
        at = _time_of(sale, event)
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

    async def on_live_session(self, event: Event[Message]) -> Outcome:
        live = event.message
        assert isinstance(live, creators_pb2.CreatorLiveSession)
        if not live.live_session_id:
            raise InvalidEventError("live_session_id is empty")
        at = _time_of(live, event)
        started = _seconds(live.started_at) if live.HasField("started_at") else at
        return await self._update(
            event,
            live.creator_id,
            "live",
            lambda s: st.apply_live(
                s,
                session_id=live.live_session_id,
                started_at=started,
                ended=live.ended,
                peak_viewers=max(0, live.peak_viewers),
                at=at,
                half_life_s=self._half_life_s,
            ),
        )

    async def on_ad_credit(self, event: Event[Message]) -> Outcome:
        credit = event.message
        assert isinstance(credit, creators_pb2.CreatorAdCredit)
        at = _time_of(credit, event)
        return await self._update(
            event,
            credit.creator_id,
            "ads",
            lambda s: st.apply_ad_credit(
                s,
                amount_minor=credit.amount.amount_minor,
                withdrawn=credit.withdrawn,
                refund=credit.refund,
                at=at,
                half_life_s=self._half_life_s,
            ),
        )

    # --- re-keying ------------------------------------------------------------------------

    async def rekey_order(self, event: Event[Message]) -> Outcome:
        return await self._rekey(event, rekey.sales(event.message, event.meta.id))

    async def rekey_live(self, event: Event[Message]) -> Outcome:
        return await self._rekey(event, rekey.live_session(event.message))

    async def rekey_attribution(self, event: Event[Message]) -> Outcome:
        return await self._rekey(event, rekey.ad_credits(event.message))

    async def _rekey(self, event: Event[Message], records: Sequence[rekey.Rekeyed]) -> Outcome:
        """Publish the per-creator records of one input; the batch waits for their acks before
        Faust acknowledges the input. Their ids derive from the input's id, so a redelivered
        input republishes the same ids and the creator's state counts it once."""
        for record in records:
            at = (
                datetime.fromtimestamp(_seconds(record.at), UTC)
                if record.HasField("at")
                else event.meta.time
            )
            meta = self._producer.meta_for(
                record,
                subject=record.creator_id,
                derived_from=f"{event.meta.id}:{record.creator_id}",
                time=at,
            )
            self._outputs.publish(INPUTS_TOPIC, record.creator_id, record, meta)
        return Outcome.PROCESSED if records else Outcome.IGNORED
