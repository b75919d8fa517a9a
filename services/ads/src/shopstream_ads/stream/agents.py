"""The attribution worker: Faust agents from raw traffic and orders to attributions and spend.

    ads.clicks.v1 (keyed by install) ──device screening──────────────────┐
                                                                         ▼
    ads.impressions.v1 ─────────────────────────────────────────────▶ buyer agents ◀── ads.screened-clicks.v1
    commerce.orders.v1 ──re-key by buyer──▶ ads.buyer-orders.v1 ────▶ (touches, attribution)
                                                                        │
                     ads.invalid-traffic.v1 ◀── flags ──────────────────┤
                     ads.attributions.v1    ◀── credits ────────────────┤
                                                                        ▼
                                      ads.ledger.v1 ──▶ ledger agent (spend, budgets, report cells)
                                                                        │
                     ads.campaigns.v1 ◀── budget exhausted ─────────────┘

Each state lives in a table keyed like the stream that updates it (install, buyer, campaign), so
a key's events meet in one partition. Every output is published, and acknowledged, before the
state that records having emitted it is written; outputs carry ids derived from what they come
from, so a redelivered input re-emits identical events that the next stage deduplicates.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
import zlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message

from shopstream.ads.v1 import ads_events_pb2 as ev
from shopstream.ads.v1 import ads_pb2
from shopstream.commerce.v1 import order_events_pb2
from shopstream_ads import convert
from shopstream_ads.book import CampaignBook
from shopstream_ads.campaigns import CAMPAIGNS_TOPIC, Campaigns
from shopstream_ads.domain import attribution as at
from shopstream_ads.domain import ledger as lg
from shopstream_ads.domain import traffic as tr
from shopstream_ads.metrics import AdsMetrics
from shopstream_ads.settings import AdsSettings
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
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.metrics import PlatformMetrics

log = logging.getLogger(__name__)

IMPRESSIONS_TOPIC = "ads.impressions.v1"
CLICKS_TOPIC = "ads.clicks.v1"
ORDERS_TOPIC = "commerce.orders.v1"
SCREENED_TOPIC = "ads.screened-clicks.v1"
BUYER_ORDERS_TOPIC = "ads.buyer-orders.v1"
LEDGER_TOPIC = "ads.ledger.v1"
INVALID_TOPIC = "ads.invalid-traffic.v1"
ATTRIBUTIONS_TOPIC = "ads.attributions.v1"
TOPICS = [
    IMPRESSIONS_TOPIC,
    CLICKS_TOPIC,
    ORDERS_TOPIC,
    SCREENED_TOPIC,
    BUYER_ORDERS_TOPIC,
    LEDGER_TOPIC,
    INVALID_TOPIC,
    ATTRIBUTIONS_TOPIC,
    CAMPAIGNS_TOPIC,
]
TABLE_PARTITIONS = 6
LOCK_STRIPES = 1_024
# Input event ids remembered per buyer, to absorb redelivery.
SEEN_PER_BUYER = 1_000
ORDERS_PER_BUYER = 500
TOUCH_NAMES = {at.CLICK: "click", at.VIEW: "view"}


def _entry_id(kind: str, ident: str) -> str:
    return f"{kind}:{ident}"


class AttributionStreams:
    def __init__(
        self,
        settings: AdsSettings,
        producer: EventProducer,
        dead_letters: DeadLetterPublisher,
        book: CampaignBook,
        campaigns: Campaigns,
        metrics: AdsMetrics,
        platform_metrics: PlatformMetrics,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self._producer = producer
        self._book = book
        self._campaigns = campaigns
        self.app = make_faust_app(
            settings.faust_app_id,
            settings.kafka,
            store=settings.store,
            data_dir=settings.data_dir,
            partitions=TABLE_PARTITIONS,
        )
        # Outputs are acknowledged once per batch of inputs, before the batch's table writes
        # reach the store and the changelogs (shopstream_platform.faust_batch).
        self.outputs = StreamOutputs(producer)

        def table(name: str) -> BatchedTable:
            return BatchedTable(
                self.app.Table(name, default=None, partitions=TABLE_PARTITIONS), self.outputs
            )

        self.devices = table("devices")
        self.buyers = table("buyers")
        self.ledgers = table("ledgers")
        # Ledger entry id -> [charge_micros, day, voided]: the ledger's deduplication and the
        # charge a voided click gives back.
        self.entries = table("entries")
        self._tables = (self.devices, self.buyers, self.ledgers, self.entries)
        batch = Batching(flush=self._flush)
        self._locks = [asyncio.Lock() for _ in range(LOCK_STRIPES)]

        def agent(name: str, topic: str, routes: dict[type[Message], Any]) -> None:
            dispatcher = agent_dispatcher(
                settings.faust_app_id,
                name,
                routes,
                dead_letters,
                platform_metrics,
                settings.consumer,
            )
            protobuf_agent(self.app, topic, dispatcher, platform_metrics, batch=batch)

        agent(
            "orders",
            ORDERS_TOPIC,
            {
                order_events_pb2.OrderPaid: self.on_order,
                order_events_pb2.OrderRefunded: self.on_order,
            },
        )
        agent("clicks", CLICKS_TOPIC, {ads_pb2.Click: self.on_click})
        agent("impressions", IMPRESSIONS_TOPIC, {ads_pb2.Impression: self.on_impression})
        agent("screened", SCREENED_TOPIC, {ev.ScreenedClick: self.on_screened_click})
        agent("buyer-orders", BUYER_ORDERS_TOPIC, {ev.BuyerOrder: self.on_buyer_order})
        agent("ledger", LEDGER_TOPIC, {ev.LedgerEntry: self.on_ledger})

    # --- lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        await run_faust_app(self.app, self.settings.kafka)

    async def recovered(self) -> None:
        """Tables restored from their changelogs and the ledgers mirrored into the book."""
        tables: Any = self.app.tables
        # Faust's own wait returns at once if recovery has not started yet: poll its flag.
        while not tables.recovery.completed.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        for campaign_id, state in list(self.ledgers.items()):
            if state is not None:
                self._book.put_ledger(campaign_id, state)
        log.info("ads tables recovered", extra={"campaigns": len(self.ledgers)})

    # --- plumbing -------------------------------------------------------------------------

    async def _flush(self) -> None:
        """End of a batch: outputs acknowledged, then every table's pending writes."""
        for table in self._tables:
            await table.flush()
        await self.outputs.acked()

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks[zlib.crc32(key.encode()) % len(self._locks)]

    def _emit(
        self, topic: str, key: str, message: Message, derived_from: str, at: float | None = None
    ) -> None:
        """Produce now; the batch waits for the acknowledgements before its table writes."""
        meta = self._producer.meta_for(
            message,
            subject=key,
            derived_from=derived_from,
            time=datetime.fromtimestamp(at, UTC) if at else None,
        )
        self.outputs.publish(topic, key, message, meta)

    def _ledger(
        self,
        campaign_id: str,
        kind: int,
        entry_id: str,
        when: float,
        amount: Any = None,
        reverses: str = "",
    ) -> None:
        entry = ev.LedgerEntry(
            entry_id=entry_id,
            campaign_id=campaign_id,
            kind=ev.LedgerKind.ValueType(kind),
            reverses=reverses,
        )
        entry.at.FromDatetime(datetime.fromtimestamp(when, UTC))
        if amount is not None:
            entry.amount.CopyFrom(amount)
        self._emit(LEDGER_TOPIC, campaign_id, entry, f"ledger:{entry_id}", when)

    def _flag(
        self,
        click: ads_pb2.Click,
        reason: int,
        detail: str,
        derived_from: str,
        *,
        reversed_charge: bool = False,
    ) -> None:
        flagged = ev.InvalidTrafficFlagged(
            click_id=click.click_id,
            campaign_id=click.campaign_id,
            buyer_id=click.buyer_id,
            install_id=click.install_id,
            reason=ev.InvalidTrafficReason.ValueType(reason),
            detail=detail,
            charge_reversed=reversed_charge,
        )
        flagged.clicked_at.CopyFrom(click.at)
        flagged.flagged_at.GetCurrentTime()
        self._emit(INVALID_TOPIC, click.buyer_id, flagged, f"flag:{derived_from}")
        self.metrics.flagged.labels(tr.REASON_NAMES[reason]).inc()

    async def _buyer_update(
        self,
        event: Event[Message],
        buyer_id: str,
        apply: Callable[[dict[str, Any]], Awaitable[Outcome]],
    ) -> Outcome:
        """Read-modify-write of one buyer's state, taking turns with the other buyer agents.

        `apply` publishes what it must before returning; the state (with this event's id
        remembered) reaches the table only after those outputs are acknowledged (at the batch's
        flush), so a crash in between re-runs `apply` on redelivery.
        """
        if not buyer_id:
            raise InvalidEventError("buyer_id is empty")
        async with self._lock(buyer_id):
            current = self.buyers.get(buyer_id)
            state = copy.deepcopy(current) if current is not None else at.new_buyer_state()
            seen: list[str] = state.setdefault("seen", [])
            if event.meta.id in seen:
                return Outcome.DUPLICATE
            outcome = await apply(state)
            seen.append(event.meta.id)
            del seen[:-SEEN_PER_BUYER]
            self.buyers.set(buyer_id, state, event.partition)
        return outcome

    # --- re-keying ------------------------------------------------------------------------

    async def on_order(self, event: Event[Message]) -> Outcome:
        """Paid and refunded orders, re-keyed by buyer with what attribution needs."""
        message = event.message
        order = message.order  # type: ignore[attr-defined]
        if not order.buyer_id:
            raise InvalidEventError("order has no buyer_id")
        refund = isinstance(message, order_events_pb2.OrderRefunded)
        out = ev.BuyerOrder(
            order_id=order.order_id,
            buyer_id=order.buyer_id,
            refund=refund,
            tracking_consent=order.tracking_consent,
            ad_click_ids=sorted(
                {ln.attribution.ad_click_id for ln in order.lines if ln.attribution.ad_click_id}
            ),
            creator_ids=sorted(
                {ln.attribution.creator_id for ln in order.lines if ln.attribution.creator_id}
            ),
        )
        out.observed_at.GetCurrentTime()
        if refund:
            out.amount.CopyFrom(message.amount)  # type: ignore[attr-defined]
            out.at.FromDatetime(event.meta.time)
        else:
            out.amount.CopyFrom(order.total)
            paid_at = message.paid_at  # type: ignore[attr-defined]
            out.at.CopyFrom(paid_at if paid_at.seconds else order.updated_at)
        self._emit(
            BUYER_ORDERS_TOPIC,
            order.buyer_id,
            out,
            f"{event.meta.id}:buyer-order",
            convert.seconds(out.at),
        )
        return Outcome.PROCESSED

    # --- per install ----------------------------------------------------------------------

    async def on_click(self, event: Event[Message]) -> Outcome:
        """Screening per install: the edge keys clicks by install (device hint), so one
        device's clicks meet here whichever buyer ids they carry."""
        click = event.message
        assert isinstance(click, ads_pb2.Click)
        _require(click.click_id, "click_id")
        _require(click.buyer_id, "buyer_id")
        _require(click.campaign_id, "campaign_id")
        if not click.at.seconds:
            raise InvalidEventError("click has no time (at)")
        install = click.install_id or click.buyer_id
        async with self._lock(install):
            current = self.devices.get(install)
            state = copy.deepcopy(current) if current is not None else tr.new_device_state()
            if tr.seen_event(state, event.meta.id):
                return Outcome.DUPLICATE
            facts = tr.ClickFacts(
                click.click_id, click.buyer_id, click.campaign_id, convert.seconds(click.at)
            )
            verdicts = tr.screen_device(state, install, facts, event.meta.id, self.settings.traffic)
            for v in verdicts:
                screened = ev.ScreenedClick(
                    flagged=ev.InvalidTrafficReason.ValueType(v.reason),
                    detail=v.detail,
                    retroactive=v.retroactive,
                )
                screened.observed_at.GetCurrentTime()
                if v.retroactive:
                    screened.click.click_id = v.click_id
                    screened.click.buyer_id = v.buyer_id
                    screened.click.campaign_id = v.campaign_id
                    screened.click.install_id = click.install_id
                    screened.click.at.CopyFrom(click.at)
                else:
                    screened.click.CopyFrom(click)
                self._emit(
                    SCREENED_TOPIC,
                    v.buyer_id,
                    screened,
                    f"{event.meta.id}:screen:{v.click_id}",
                    facts.at,
                )
            self.devices.set(install, state, event.partition)
        return Outcome.PROCESSED

    # --- per buyer ------------------------------------------------------------------------

    async def on_impression(self, event: Event[Message]) -> Outcome:
        imp = event.message
        assert isinstance(imp, ads_pb2.Impression)
        _require(imp.impression_id, "impression_id")
        _require(imp.campaign_id, "campaign_id")
        if not imp.at.seconds:
            raise InvalidEventError("impression has no time (at)")
        when = convert.seconds(imp.at)

        async def apply(state: dict[str, Any]) -> Outcome:
            if at.has_touch(state, at.VIEW, imp.impression_id):
                return Outcome.DUPLICATE  # the same impression re-sent under a new event id
            amount = imp.clearing_price if imp.HasField("clearing_price") else None
            self._ledger(
                imp.campaign_id, lg.IMPRESSION, _entry_id("imp", imp.impression_id), when, amount
            )
            at.remember_touch(
                state, at.VIEW, imp.impression_id, imp.campaign_id, when, self.settings.attribution
            )
            self._reconsider(state, when, event.meta.id)
            self.metrics.impressions.labels(imp.placement or "unknown").inc()
            return Outcome.PROCESSED

        return await self._buyer_update(event, imp.buyer_id, apply)

    async def on_screened_click(self, event: Event[Message]) -> Outcome:
        screened = event.message
        assert isinstance(screened, ev.ScreenedClick)
        click = screened.click
        when = convert.seconds(click.at)
        rules = self.settings.traffic
        if not screened.retroactive and not screened.flagged and click.impression_id:
            await self._await_impression(click, screened)

        async def apply(state: dict[str, Any]) -> Outcome:
            if screened.retroactive:
                if at.forget_touch(state, at.CLICK, click.click_id):
                    self._void(click, screened.flagged, screened.detail, event.meta.id)
                return Outcome.PROCESSED
            state["click_times"], burst = tr.buyer_burst(state["click_times"], when, rules)
            if screened.flagged:
                at.forget_touch(state, at.VIEW, click.impression_id)
                self._flag(click, screened.flagged, screened.detail, event.meta.id)
                return Outcome.PROCESSED
            reason, detail = 0, ""
            if at.has_touch(state, at.CLICK, click.click_id):
                reason, detail = (
                    tr.DUPLICATE_CLICK_ID,
                    f"click id {click.click_id} seen before for this buyer",
                )
            elif burst:
                reason, detail = tr.BUYER_BURST, burst
            elif not click.impression_id or not at.has_touch(state, at.VIEW, click.impression_id):
                reason = tr.NO_IMPRESSION
                detail = f"no impression {click.impression_id or '(none given)'} before this click"
            if reason:
                at.forget_touch(state, at.VIEW, click.impression_id)
                self._flag(click, reason, detail, event.meta.id)
                if reason == tr.BUYER_BURST:
                    # The burst shows only now: the buyer's earlier clicks in it are invalid too.
                    horizon = when - rules.burst_window_s
                    for t in [
                        t for t in state["touches"] if t[at.KIND] == at.CLICK and t[at.AT] > horizon
                    ]:
                        at.forget_touch(state, at.CLICK, t[at.TOUCH_ID])
                        earlier = ads_pb2.Click(
                            click_id=t[at.TOUCH_ID],
                            buyer_id=click.buyer_id,
                            campaign_id=t[at.CAMPAIGN],
                        )
                        earlier.at.FromDatetime(datetime.fromtimestamp(t[at.AT], UTC))
                        self._void(earlier, reason, detail, event.meta.id)
                return Outcome.PROCESSED
            amount = click.clearing_price if click.HasField("clearing_price") else None
            self._ledger(
                click.campaign_id, lg.CLICK, _entry_id("click", click.click_id), when, amount
            )
            at.remember_touch(
                state,
                at.CLICK,
                click.click_id,
                click.campaign_id,
                when,
                self.settings.attribution,
                via=click.impression_id,
            )
            self._reconsider(state, when, event.meta.id)
            self.metrics.clicks.labels(click.placement or "unknown").inc()
            return Outcome.PROCESSED

        return await self._buyer_update(event, click.buyer_id, apply)

    async def _await_impression(self, click: ads_pb2.Click, screened: ev.ScreenedClick) -> None:
        """Give the click's impression (another topic, another agent) the join grace to arrive."""
        if not screened.HasField("observed_at"):
            return
        deadline = convert.seconds(screened.observed_at) + self.settings.attribution.join_grace_s
        while time.time() < deadline:
            state = self.buyers.get(click.buyer_id)
            if state is not None and at.has_touch(state, at.VIEW, click.impression_id):
                return
            await asyncio.sleep(0.05)

    def _void(self, click: ads_pb2.Click, reason: int, detail: str, cause: str) -> None:
        """A click billed before it was found invalid: reverse its charge, report it."""
        self._ledger(
            click.campaign_id,
            lg.CLICK_VOIDED,
            _entry_id("void", click.click_id),
            convert.seconds(click.at),
            reverses=_entry_id("click", click.click_id),
        )
        self._flag(click, reason, detail, f"{cause}:{click.click_id}", reversed_charge=True)

    async def on_buyer_order(self, event: Event[Message]) -> Outcome:
        order = event.message
        assert isinstance(order, ev.BuyerOrder)
        when = convert.seconds(order.at)
        if order.HasField("observed_at"):
            wait = convert.seconds(order.observed_at) + self.settings.attribution.join_grace_s
            if wait > time.time():
                await asyncio.sleep(wait - time.time())

        async def apply(state: dict[str, Any]) -> Outcome:
            orders: dict[str, Any] = state["orders"]
            if order.refund:
                facts = orders.get(order.order_id)
                if not facts or not facts["credit"]:
                    return Outcome.IGNORED
                self._publish_credit(
                    order.order_id,
                    facts,
                    facts["credit"],
                    event.meta.id,
                    kind=lg.REFUND,
                    amount=order.amount.amount_minor,
                )
                return Outcome.PROCESSED
            if order.order_id in orders:
                return Outcome.DUPLICATE
            orders[order.order_id] = {
                "buyer": order.buyer_id,
                "at": when,
                "consent": order.tracking_consent,
                "clicks": list(order.ad_click_ids),
                "amount": order.amount.amount_minor,
                "currency": order.amount.currency,
                "creators": list(order.creator_ids),
                "credit": None,
            }
            self._decide(state, order.order_id, event.meta.id, arrival=True)
            for stale in list(orders)[:-ORDERS_PER_BUYER]:
                del orders[stale]
            return Outcome.PROCESSED

        return await self._buyer_update(event, order.buyer_id, apply)

    def _decide(
        self, state: dict[str, Any], order_id: str, cause: str, *, arrival: bool = False
    ) -> None:
        """(Re)decide an order's credit from the touches known now; publish a change of credit.

        Run when the order arrives and again when a touch arrives that could take its credit
        (touches and orders come on different topics, so a touch can arrive after the order it
        precedes): the earlier credit is then withdrawn and the new one given.
        """
        facts = state["orders"][order_id]
        decision = at.decide(
            state,
            at.OrderFacts(order_id, facts["at"], facts["consent"], frozenset(facts["clicks"])),
            self.settings.attribution,
        )
        for fast in decision.too_fast:
            at.forget_touch(state, at.CLICK, fast.touch_id)
            click = ads_pb2.Click(
                click_id=fast.touch_id, buyer_id=facts["buyer"], campaign_id=fast.campaign_id
            )
            click.at.FromDatetime(datetime.fromtimestamp(fast.touched_at, UTC))
            self._void(
                click,
                tr.IMPOSSIBLE_TIMING,
                f"paid order {order_id} {facts['at'] - fast.touched_at:.1f} s after the click",
                f"{cause}:{order_id}",
            )
        c = decision.credit
        new = [c.campaign_id, c.kind, c.touch_id, c.touched_at] if c is not None else None
        old = facts["credit"]
        if new == old:
            if new is None and arrival:
                self.metrics.unattributed.inc()
            return
        if old is not None:
            self._publish_credit(
                order_id, facts, old, cause, kind=lg.CONVERSION_WITHDRAWN, amount=facts["amount"]
            )
        facts["credit"] = new
        if new is not None:
            self._publish_credit(
                order_id, facts, new, cause, kind=lg.CONVERSION, amount=facts["amount"]
            )

    def _reconsider(self, state: dict[str, Any], touch_at: float, cause: str) -> None:
        """A touch arrived: orders it precedes within the click window may owe it their credit."""
        window = self.settings.attribution.click_window_s
        for order_id, facts in list(state["orders"].items()):
            if facts is not None and 0 <= facts["at"] - touch_at <= window:
                self._decide(state, order_id, cause)

    def _publish_credit(
        self,
        order_id: str,
        facts: dict[str, Any],
        credit: list[Any],
        cause: str,
        *,
        kind: int,
        amount: int,
    ) -> None:
        campaign_id, touch, touch_id, touched_at = credit
        campaign = self._book.campaign(campaign_id)
        negative = kind in (lg.REFUND, lg.CONVERSION_WITHDRAWN)
        suffix = {
            lg.CONVERSION: "",
            lg.REFUND: f":refund:{cause}",
            lg.CONVERSION_WITHDRAWN: ":withdrawn",
        }[kind]
        out = ev.Attribution(
            attribution_id=f"{order_id}:{touch_id}{suffix}",
            order_id=order_id,
            buyer_id=facts["buyer"],
            campaign_id=campaign_id,
            advertiser_id=campaign.advertiser_id if campaign else "",
            touch=ev.TOUCH_TYPE_CLICK if touch == at.CLICK else ev.TOUCH_TYPE_VIEW,
            touch_id=touch_id,
            refund=kind == lg.REFUND,
            withdrawn=kind == lg.CONVERSION_WITHDRAWN,
            model_version=self.settings.attribution.version,
            creator_ids=facts["creators"],
        )
        out.touched_at.FromDatetime(datetime.fromtimestamp(touched_at, UTC))
        out.ordered_at.FromDatetime(datetime.fromtimestamp(facts["at"], UTC))
        currency = facts["currency"]
        out.amount.currency = currency
        out.amount.amount_minor = -amount if negative else amount
        self._emit(ATTRIBUTIONS_TOPIC, campaign_id, out, f"attribution:{out.attribution_id}")
        # The ledger books every change on the order's own day, so a day's GMV nets them.
        self._ledger(
            campaign_id,
            kind,
            f"conv:{out.attribution_id}",
            facts["at"],
            convert.money(amount, currency),
        )
        if kind == lg.REFUND:
            self.metrics.attributed_refunds.labels(currency).inc(amount)
        elif kind == lg.CONVERSION_WITHDRAWN:
            self.metrics.withdrawn.labels(TOUCH_NAMES[touch]).inc()
            self.metrics.withdrawn_gmv.labels(currency).inc(amount)
        else:
            self.metrics.attributions.labels(TOUCH_NAMES[touch]).inc()
            self.metrics.attributed_gmv.labels(currency).inc(amount)
            self.metrics.lag.observe(max(0.0, time.time() - facts["at"]))

    # --- per campaign ---------------------------------------------------------------------

    async def on_ledger(self, event: Event[Message]) -> Outcome:
        entry = event.message
        assert isinstance(entry, ev.LedgerEntry)
        campaign = await self._campaigns.find(entry.campaign_id)
        if campaign is None:
            raise InvalidEventError(f"unknown campaign {entry.campaign_id!r}")
        when = convert.seconds(entry.at)
        async with self._lock(campaign.campaign_id):
            if self.entries.get(entry.entry_id) is not None:
                return Outcome.DUPLICATE
            current = self.ledgers.get(campaign.campaign_id)
            state = copy.deepcopy(current) if current is not None else lg.new_ledger_state()
            record: list[Any] = [0, lg.day_of(when), False]
            if entry.kind in (lg.IMPRESSION, lg.CLICK):
                applied = lg.apply_served(
                    state, campaign, entry.kind, when, entry.amount.amount_minor
                )
                record[0] = applied.charge_micros
                for budget in applied.exhausted:
                    self._exhausted(campaign, state, budget, lg.day_of(when))
                if applied.charge_micros:
                    self.metrics.spend.labels(campaign.currency).inc(applied.charge_micros / 1_000)
            elif entry.kind == lg.CLICK_VOIDED:
                original = self.entries.get(entry.reverses)
                if original is not None and not original[2]:
                    lg.apply_void(state, original[1], original[0])
                    self.entries.set(
                        entry.reverses, [original[0], original[1], True], event.partition
                    )
            elif entry.kind in (lg.CONVERSION, lg.REFUND, lg.CONVERSION_WITHDRAWN):
                lg.apply_conversion(state, entry.kind, when, entry.amount.amount_minor)
            else:
                raise InvalidEventError(f"unknown ledger kind {entry.kind}")
            self.entries.set(entry.entry_id, record, event.partition)
            self.ledgers.set(campaign.campaign_id, state, event.partition)
            self._book.put_ledger(campaign.campaign_id, state)
        return Outcome.PROCESSED

    def _exhausted(self, campaign: Any, state: dict[str, Any], budget: str, day: str) -> None:
        total = budget == "total"
        out = ev.CampaignBudgetExhausted(
            campaign_id=campaign.campaign_id,
            advertiser_id=campaign.advertiser_id,
            budget=ev.BUDGET_KIND_TOTAL if total else ev.BUDGET_KIND_DAILY,
            day="" if total else day,
        )
        spent = state["spent"] if total else state["days"][day][lg.SPEND]
        out.spent.CopyFrom(convert.money(spent // 1_000, campaign.currency))
        limit = campaign.total_budget_minor if total else campaign.daily_budget_minor
        out.limit.CopyFrom(convert.money(limit, campaign.currency))
        out.at.GetCurrentTime()
        self._emit(
            CAMPAIGNS_TOPIC,
            campaign.campaign_id,
            out,
            f"exhausted:{campaign.campaign_id}:{budget}:{out.day}",
        )
        self.metrics.budget_exhausted.labels(budget).inc()
        log.info(
            "campaign budget exhausted",
            extra={"campaign_id": campaign.campaign_id, "budget": budget},
        )


def _require(value: str, field: str) -> None:
    if not value:
        raise InvalidEventError(f"{field} is empty")
