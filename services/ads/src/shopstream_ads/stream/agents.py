"""The attribution worker: one Faust agent applies the combiner's input batches, one keeps the
campaign ledgers.

    ads.clicks.v1 ───────────┐                      ┌─ per install: screening ──▶ ads.screened-clicks.v1 ─┐
    ads.impressions.v1 ──────┤                      │                                                    │
    ads.screened-clicks.v1 ◀─┼──── combiner ──▶ ads.input-batches.v1 ──┤                                 │
    commerce.orders.v1 ──────┘   (inputs.py)        └─ per buyer: touches, attribution ◀─────────────────┘
                                                                  │
                     ads.invalid-traffic.v1 ◀── flags ────────────┤
                     ads.attributions.v1    ◀── credits ──────────┤
                                                                  ▼
                          ads.ledger.v1 (spend per campaign, day and batch; clicks; conversions)
                                                                  │
                                     ledger agent (budgets, report cells) ──▶ ads.campaigns.v1

The combiner (a separate process, shopstream_platform.combiner) reads the raw topics and writes
one AdsInputBatch per table partition and window, in a Kafka transaction with the offsets it
read. Per batch record the applier screens each install's clicks and applies each buyer's inputs
to its state in place, then writes each changed state once; a record applied before a restart is
skipped by the state's watermark (`wm`). Impressions reach the ledger as one line per campaign,
day and record (counts per clearing price), not one per impression.

The join grace is a timer, not a wait: a click whose impression has not arrived, and a paid order
(touches may still be on their way through screening), are held in the buyer's state until the
impression comes or the grace ends; `_release_due` runs the held inputs whose time has come by
the clock of the batch records (the combiner's event-time watermark, with ticks for idle
partitions), so a re-run after a crash, or a backlog read after an outage, holds and releases at
the same points of the stream.

Every output is published, and acknowledged, before the state that records having emitted it is
written (the tables flush after the outputs' acks, at offset commits); outputs carry ids derived
from what they come from, so a re-run re-emits identical events that the next stage deduplicates.
"""

from __future__ import annotations

import asyncio
import base64
import heapq
import logging
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message

from shopstream.ads.v1 import ads_events_pb2 as ev
from shopstream.ads.v1 import ads_pb2
from shopstream_ads import convert
from shopstream_ads.book import CampaignBook
from shopstream_ads.campaigns import CAMPAIGNS_TOPIC, Campaigns
from shopstream_ads.domain import attribution as at
from shopstream_ads.domain import ledger as lg
from shopstream_ads.domain import traffic as tr
from shopstream_ads.metrics import AdsMetrics
from shopstream_ads.settings import AdsSettings
from shopstream_ads.stream.combiner import combiner_group
from shopstream_ads.stream.topics import (
    ATTRIBUTIONS_TOPIC,
    INPUT_BATCHES_TOPIC,
    INVALID_TOPIC,
    LEDGER_TOPIC,
    SCREENED_TOPIC,
    TABLE_PARTITIONS,
)
from shopstream_platform.combiner import accepts_batch, partition_for
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

LEDGER_KINDS = frozenset(
    (lg.IMPRESSION, lg.CLICK, lg.CLICK_VOIDED, lg.CONVERSION, lg.REFUND, lg.CONVERSION_WITHDRAWN)
)
ORDERS_PER_BUYER = 500
TOUCH_NAMES = {at.CLICK: "click", at.VIEW: "view"}
# How often pending ledger lines are sent at least.
LINES_INTERVAL_S = 0.1
# A ledger partition's pending lines are sent once this many wait (about 100 bytes each).
MAX_LINES_PER_RECORD = 2_000
# Held inputs: [due, kind, ...]; a click: [due, "click", event_id, ScreenedClick (base64),
# click_id];
# an order: [due, "order", order_id]; a refund: [due, "refund", event_id, BuyerOrder (base64)].
DUE, HELD_KIND = 0, 1
# An order's credit: [campaign id, touch kind, touch id, touched at, attribution id].
CREDIT_ID = 4


def _entry_id(kind: str, ident: str) -> str:
    return f"{kind}:{ident}"


def _pack(message: Message) -> str:
    return base64.b64encode(message.SerializeToString()).decode()


class _Spend:
    """A batch record's impressions per (campaign, day): counts per clearing price."""

    def __init__(self) -> None:
        self.lines: dict[tuple[str, str], tuple[float, Counter[int]]] = {}
        # Impressions counted per placement, for the metric (once per record, not per buyer).
        self.placements: Counter[str] = Counter()

    def add(self, campaign_id: str, when: float, clearing_minor: int) -> None:
        key = (campaign_id, lg.day_of(when))
        line = self.lines.get(key)
        if line is None:
            line = self.lines[key] = (when, Counter())
        line[1][clearing_minor] += 1


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
            commit_interval_s=settings.commit_interval_s,
        )
        # Outputs are acknowledged before the table writes that record them reach the store
        # and the changelogs (shopstream_platform.faust_batch).
        self.outputs = StreamOutputs(producer)

        def table(name: str, *, direct: bool) -> BatchedTable:
            return BatchedTable(
                self.app.Table(name, default=None, partitions=TABLE_PARTITIONS),
                self.outputs,
                direct_changelog=direct,
            )

        self.devices = table("devices", direct=True)
        self.buyers = table("buyers", direct=True)
        self.ledgers = table("ledgers", direct=False)
        # Per table partition, (due, buyer id) of its buyers holding inputs for the join grace.
        self._held: dict[int, list[tuple[float, str]]] = {}
        # Per campaign seen: (click window s, view window s, engaged-view ms) (`_rules_of`).
        self._campaign_rules: dict[str, tuple[int, int, int]] = {}
        # Ledger lines not yet sent, per ledger partition (`_add_line`).
        self._lines: dict[int, ev.LedgerLines] = {}
        self.outputs.defer(self._publish_lines)
        self._combiner_group = combiner_group(settings)

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

        # A batch record holds a window of one partition: a few records per Faust batch. The
        # states reach the store and changelogs at offset commits (and when many wait), not per
        # batch.
        agent(
            "inputs",
            INPUT_BATCHES_TOPIC,
            {ev.AdsInputBatch: self.on_batch},
            Batching(flush=self._after_batch, max_events=64, within_s=0.01),
        )
        agent(
            "ledger",
            LEDGER_TOPIC,
            {ev.LedgerEntry: self.on_ledger, ev.LedgerLines: self.on_ledger_lines},
            Batching(flush=self._after_ledger_batch),
        )
        self.app.add_commit_barrier(self._flush_states)
        self.app.timer(LINES_INTERVAL_S)(self._send_lines)

    # --- lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        await run_faust_app(self.app, self.settings.kafka)

    async def recovered(self) -> None:
        """Tables restored from their changelogs, the ledgers mirrored into the book and the
        buyers holding inputs put back on the release timer."""
        tables: Any = self.app.tables
        # Faust's own wait returns at once if recovery has not started yet: poll its flag.
        while not tables.recovery.completed.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        for campaign_id, state in list(self.ledgers.items()):
            if state is not None:
                self._book.put_ledger(campaign_id, state)
        for buyer_id, state in list(self.buyers.items()):
            if state is not None and state.get("held"):
                self._schedule(buyer_id, partition_for(buyer_id, TABLE_PARTITIONS), state)
        log.info(
            "ads tables recovered",
            extra={
                "campaigns": len(self.ledgers),
                "held": sum(len(h) for h in self._held.values()),
            },
        )

    # --- plumbing -------------------------------------------------------------------------

    async def _after_batch(self) -> None:
        await self.outputs.check()
        await self.devices.flush_if_over(self.settings.max_dirty_keys)
        await self.buyers.flush_if_over(self.settings.max_dirty_keys)

    async def _flush_states(self) -> None:
        # Once per offset commit, not per batch: a campaign's ledger (with the entry ids and
        # click charges it remembers) is tens of KiB of JSON.
        await self.devices.flush()
        await self.buyers.flush()
        await self.ledgers.flush()

    async def _after_ledger_batch(self) -> None:
        await self.outputs.check()
        await self.ledgers.flush_if_over(self.settings.max_dirty_keys)

    def _emit(
        self, topic: str, key: str, message: Message, derived_from: str, at: float | None = None
    ) -> None:
        """Produce now; the states wait for the acknowledgements before they are written."""
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
        served_at_price: dict[int, int] | None = None,
    ) -> None:
        entry = ev.LedgerEntry(
            entry_id=entry_id,
            campaign_id=campaign_id,
            kind=ev.LedgerKind.ValueType(kind),
            reverses=reverses,
            served_at_price=served_at_price,
        )
        entry.at.FromDatetime(datetime.fromtimestamp(when, UTC))
        if amount is not None:
            entry.amount.CopyFrom(amount)
        self._add_line(entry)

    def _add_line(self, entry: ev.LedgerEntry) -> None:
        """Into the ledger partition's pending `LedgerLines`: the ledger agent then gets a few
        records per 100 ms, not one per click, conversion and batch. Each line keeps its own
        id (derived from its input), which the ledger deduplicates however lines are grouped."""
        partition = partition_for(entry.campaign_id, TABLE_PARTITIONS)
        lines = self._lines.get(partition)
        if lines is None:
            lines = self._lines[partition] = ev.LedgerLines(worker=self.settings.faust_app_id)
        lines.entries.append(entry)
        if len(lines.entries) >= MAX_LINES_PER_RECORD:
            self._publish_lines_of(partition)

    def _publish_lines(self) -> None:
        """Send every pending `LedgerLines`: on the release timer, and before any state is
        written (`StreamOutputs.defer`), so a state never records inputs whose lines are unsent."""
        for partition in list(self._lines):
            self._publish_lines_of(partition)

    def _publish_lines_of(self, partition: int) -> None:
        lines = self._lines.pop(partition)
        first = lines.entries[0]
        # Keyed by one of its campaigns: the partitioner puts it in their partition.
        self._emit(
            LEDGER_TOPIC,
            first.campaign_id,
            lines,
            f"ledger-lines:{first.entry_id}:{len(lines.entries)}",
            convert.seconds(first.at),
        )

    # --- applying a batch -----------------------------------------------------------------

    async def on_batch(self, event: Event[Message]) -> Outcome:
        """Apply one window of one partition. A failure ends the worker rather than letting the
        record be dead-lettered: states are changed in place (`_apply_batch`), so nothing of a
        failed batch may be written or committed."""
        if not accepts_batch(event.meta.source, self._combiner_group, self.settings.service_name):
            return Outcome.IGNORED  # another deployment's combiner, on the same broker
        try:
            # The commit barrier's flush waits for this batch rather than writing states it is
            # changing in place (whose outputs it would not have waited for).
            async with self.devices.lock, self.buyers.lock:
                return self._apply_batch(event)
        except Exception as exc:
            log.critical("input batch failed; ending the worker", extra={"error": repr(exc)})
            self.app.fail(exc)
            await asyncio.Future()  # never returns: the worker is stopping
            raise

    def _apply_batch(self, event: Event[Message]) -> Outcome:
        """Per install its clicks, per buyer its inputs, each state changed in place and set
        once. No await inside: nothing interleaves. This agent is the only writer of the devices
        and buyers tables.

        The record's clock is the combiner's event time (`watermark`), not this process's:
        holding and releasing inputs then happen at the same point of the stream when a record
        is applied again after a crash, and when the combiner catches up on a backlog, and so
        do the decisions that depend on them."""
        batch = event.message
        assert isinstance(batch, ev.AdsInputBatch)
        partition, offset = event.partition, event.offset
        installs: dict[str, list[ev.AdsInput]] = {}
        buyers: dict[str, list[ev.AdsInput]] = {}
        for item in batch.inputs:
            group = installs if item.HasField("click") else buyers
            items = group.get(item.key)
            if items is None:
                group[item.key] = [item]
            else:
                items.append(item)
        if batch.HasField("watermark"):
            now = convert.seconds(batch.watermark)
        elif batch.HasField("closed_at"):
            now = convert.seconds(batch.closed_at)  # a combiner of before event time
        else:
            now = time.time()
        applied = 0
        for install, clicks in installs.items():
            applied += self._screen(install, clicks, partition, offset, now)
        spend = _Spend()
        for buyer_id, items in buyers.items():
            applied += self._apply_buyer(buyer_id, items, partition, offset, spend, now)
        applied += self._release_due(partition, offset, now)
        self._spend(spend, partition, offset)
        for placement, count in spend.placements.items():
            self.metrics.impressions.labels(placement).inc(count)
        if applied:
            return Outcome.PROCESSED
        # A tick that released nothing is not a duplicate on the dashboards.
        return Outcome.DUPLICATE if batch.inputs else Outcome.IGNORED

    def _spend(self, spend: _Spend, partition: int, offset: int) -> None:
        """The record's impressions as ledger lines, one record per ledger partition: a few
        records per window whatever the number of campaigns. Line ids derive from the input
        record, so a record applied again (after a crash, before its states were written)
        gives the same lines, which the ledger then skips."""
        for (campaign_id, day), (when, prices) in spend.lines.items():
            entry = ev.LedgerEntry(
                entry_id=f"imps:{partition}:{offset}:{campaign_id}:{day}",
                campaign_id=campaign_id,
                kind=ev.LEDGER_KIND_IMPRESSION,
                served_at_price=dict(prices),
            )
            entry.at.FromDatetime(datetime.fromtimestamp(when, UTC))
            self._add_line(entry)

    def _screen(
        self, install: str, clicks: list[ev.AdsInput], partition: int, offset: int, now: float
    ) -> int:
        """Screening per install: the edge keys clicks by install (device hint), so one device's
        clicks meet here whichever buyer ids they carry."""
        current = self.devices.get(install, partition)
        if current is not None and current.get("wm", -1) >= offset:
            return 0  # this record was applied before a restart
        state = current if current is not None else tr.new_device_state()
        for item in clicks:
            click = item.click
            if tr.seen_event(state, item.event_id):
                continue  # the same click event re-sent upstream
            facts = tr.ClickFacts(
                click.click_id, click.buyer_id, click.campaign_id, convert.seconds(click.at)
            )
            for v in tr.screen_device(state, install, facts, item.event_id, self.settings.traffic):
                screened = ev.ScreenedClick(
                    flagged=ev.InvalidTrafficReason.ValueType(v.reason),
                    detail=v.detail,
                    retroactive=v.retroactive,
                    worker=self.settings.faust_app_id,
                )
                screened.observed_at.FromNanoseconds(int(now * 1e9))
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
                    f"{item.event_id}:screen:{v.click_id}",
                    facts.at,
                )
        state["wm"] = offset
        self.devices.set(install, state, partition)
        return len(clicks)

    def _apply_buyer(
        self,
        buyer_id: str,
        items: list[ev.AdsInput],
        partition: int,
        offset: int,
        spend: _Spend,
        now: float,
    ) -> int:
        current = self.buyers.get(buyer_id, partition)
        if current is not None and current.get("wm", -1) >= offset:
            return 0  # this record was applied before a restart
        state = current if current is not None else at.new_buyer_state()
        state.pop("seen", None)  # the event ids versions before the combiner remembered
        state.setdefault("held", [])
        impressions: list[ev.AdsInput] = []
        others: list[ev.AdsInput] = []
        for item in items:
            (impressions if item.HasField("impression") else others).append(item)
        if impressions:
            self._impressions(state, impressions, spend)
            if state["held"]:
                self._release(state, now)  # clicks that waited for these impressions
        for item in others:
            if item.HasField("screened"):
                self._screened(state, item, now)
            elif item.HasField("order"):
                self._order(state, item, now)
        if others and state["held"]:
            self._release(state, now)  # orders whose named clicks joined meanwhile
        state["wm"] = offset
        self.buyers.set(buyer_id, state, partition)
        if state["held"]:
            self._schedule(buyer_id, partition, state)
        return len(items)

    # --- per buyer ------------------------------------------------------------------------

    def _impressions(self, state: dict[str, Any], items: list[ev.AdsInput], spend: _Spend) -> None:
        """A batch of one buyer's impressions: each new one a view touch and a charge in the
        batch's spend lines; one sort of the touches, one reconsideration of the orders."""
        known: set[str] = set()  # this call's own
        new: list[list[Any]] = []
        placements = spend.placements
        rules_of = self._rules_of
        touches = state["touches"]
        # Impressions mostly come in time order: one later than every touch known is new
        # without a search (the per-impression loop is most of the drain's time).
        latest = touches[-1][at.AT] if touches else float("-inf")
        for item in items:
            imp = item.impression
            impression_id = imp.impression_id
            ts = imp.at
            when = ts.seconds + ts.nanos / 1e9
            if impression_id in known or (
                when <= latest and at.has_touch_at(state, at.VIEW, impression_id, when)
            ):
                continue  # the same impression re-sent under a new event id
            known.add(impression_id)
            campaign_id = imp.campaign_id
            spend.add(campaign_id, when, imp.clearing_price.amount_minor)
            placements[imp.placement or "unknown"] += 1
            # Charged and counted as served either way; a touch only where the campaign
            # credits views, and, with an engaged-view rule, only one watched long enough.
            _, view_s, engaged_ms = rules_of(campaign_id)
            if view_s and imp.watched_ms >= engaged_ms:
                new.append([at.VIEW, impression_id, campaign_id, when, ""])
            else:
                known.add(impression_id)
        if not new:
            return
        at.add_touches(state, new, self.settings.attribution)
        if state["orders"]:
            self._reconsider(
                state,
                min(t[at.AT] for t in new),
                items[0].event_id,
                views=True,
                window_s=max(self._windows(t[at.CAMPAIGN])[1] for t in new),
            )

    def _screened(self, state: dict[str, Any], item: ev.AdsInput, now: float) -> None:
        if not at.first_time(state, item.event_id):
            return  # the same screened click re-sent
        screened = item.screened
        click = screened.click
        if (
            not screened.retroactive
            and not screened.flagged
            and click.impression_id
            and not at.has_touch(state, at.VIEW, click.impression_id)
            and screened.HasField("observed_at")
        ):
            # The impression comes on another topic: hold the click for the join grace.
            due = convert.seconds(screened.observed_at) + self.settings.attribution.join_grace_s
            if due > now:
                state["held"].append([due, "click", item.event_id, _pack(screened), click.click_id])
                return
        self._click(state, screened, item.event_id)

    def _click(self, state: dict[str, Any], screened: ev.ScreenedClick, cause: str) -> None:
        click = screened.click
        when = convert.seconds(click.at)
        rules = self.settings.traffic
        if screened.retroactive:
            forgotten = at.forget_touch(state, at.CLICK, click.click_id)
            if forgotten:
                self._void(click, screened.flagged, screened.detail, cause)
                self._redecide_credited_to(state, forgotten, cause)
            elif self._unhold_click(state, click.click_id):
                # Still waiting for its impression, so never billed: flagged, nothing to reverse.
                self._flag(click, screened.flagged, screened.detail, cause)
            return
        state["click_times"], burst = tr.buyer_burst(state["click_times"], when, rules)
        if screened.flagged:
            forgotten = at.forget_touch(state, at.VIEW, click.impression_id)
            self._flag(click, screened.flagged, screened.detail, cause)
            self._redecide_credited_to(state, forgotten, cause)
            return
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
            forgotten = at.forget_touch(state, at.VIEW, click.impression_id)
            self._flag(click, reason, detail, cause)
            self._redecide_credited_to(state, forgotten, cause)
            if reason == tr.BUYER_BURST:
                # The burst shows only now: the buyer's earlier clicks in it are invalid too.
                horizon = when - rules.burst_window_s
                for t in [
                    t for t in state["touches"] if t[at.KIND] == at.CLICK and t[at.AT] > horizon
                ]:
                    forgotten = at.forget_touch(state, at.CLICK, t[at.TOUCH_ID])
                    self._redecide_credited_to(state, forgotten, cause)
                    earlier = ads_pb2.Click(
                        click_id=t[at.TOUCH_ID],
                        buyer_id=click.buyer_id,
                        campaign_id=t[at.CAMPAIGN],
                    )
                    earlier.at.FromDatetime(datetime.fromtimestamp(t[at.AT], UTC))
                    self._void(earlier, reason, detail, cause)
            return
        amount = click.clearing_price if click.HasField("clearing_price") else None
        self._ledger(click.campaign_id, lg.CLICK, _entry_id("click", click.click_id), when, amount)
        at.remember_touch(
            state,
            at.CLICK,
            click.click_id,
            click.campaign_id,
            when,
            self.settings.attribution,
            via=click.impression_id,
        )
        self._reconsider(state, when, cause, window_s=self._windows(click.campaign_id)[0])
        self.metrics.clicks.labels(click.placement or "unknown").inc()

    def _order(self, state: dict[str, Any], item: ev.AdsInput, now: float) -> None:
        order = item.order
        orders: dict[str, Any] = state["orders"]
        if order.refund:
            if not at.first_time(state, item.event_id):
                return  # the same refund re-sent
            facts = orders.get(order.order_id)
            if facts is not None and facts.get("held"):
                # Its order waits for the grace: the refund follows it, in order.
                state["held"].append([facts["held"], "refund", item.event_id, _pack(order)])
                return
            self._refund(state, order, item.event_id)
            return
        if order.order_id in orders:
            return  # the same paid order re-sent
        facts = {
            "buyer": order.buyer_id,
            "at": convert.seconds(order.at),
            "consent": order.tracking_consent,
            "clicks": list(order.ad_click_ids),
            "amount": order.amount.amount_minor,
            "currency": order.amount.currency,
            "creators": list(order.creator_ids),
            "credit": None,
        }
        orders[order.order_id] = facts
        for stale in list(orders)[:-ORDERS_PER_BUYER]:
            del orders[stale]
        due = 0.0
        if order.HasField("observed_at") and self._awaits_click(state, facts):
            due = convert.seconds(order.observed_at) + self.settings.attribution.join_grace_s
        if due > now:
            # A click the order names is still in the screening pipeline: the grace lets it
            # join (deciding now would credit a view, then move the credit when it comes).
            facts["held"] = due
            state["held"].append([due, "order", order.order_id])
            return
        self._decide(state, order.order_id, item.event_id, arrival=True)

    @staticmethod
    def _awaits_click(state: dict[str, Any], facts: dict[str, Any]) -> bool:
        """The order names a click this buyer's state does not know yet. An order that names
        none, or only known clicks, is decided at once: holding it would only add the grace to
        its lag (a touch that still comes later re-decides it, as for any order)."""
        return any(not at.has_touch(state, at.CLICK, c) for c in facts["clicks"])

    def _refund(self, state: dict[str, Any], order: ev.BuyerOrder, cause: str) -> None:
        facts = state["orders"].get(order.order_id)
        if not facts:
            return
        facts["refunded"] = facts.get("refunded", 0) + order.amount.amount_minor
        if not facts["credit"]:
            return  # a credit given later is net of it
        self._publish_credit(
            order.order_id,
            facts,
            facts["credit"],
            cause,
            kind=lg.REFUND,
            amount=order.amount.amount_minor,
        )

    # --- the join grace ---------------------------------------------------------------------

    def _release(self, state: dict[str, Any], now: float) -> None:
        """Run the held inputs whose time has come, in the order they arrived: a click once its
        impression is known or its grace is over, an order once every click it names is known
        or its grace is over, a refund right after its order. The only place held inputs
        leave; a pass that joined a click runs again for the orders held ahead of it."""
        while self._release_pass(state, now):
            pass

    def _release_pass(self, state: dict[str, Any], now: float) -> bool:
        kept: list[list[Any]] = []
        clicked = False
        for held in state["held"]:
            due, kind = held[DUE], held[HELD_KIND]
            if kind == "click":
                screened = ev.ScreenedClick.FromString(base64.b64decode(held[3]))
                if due <= now or at.has_touch(state, at.VIEW, screened.click.impression_id):
                    self._click(state, screened, held[2])
                    clicked = True
                    continue
            elif kind == "order":
                facts = state["orders"].get(held[2])
                if facts is None:
                    continue  # trimmed away meanwhile
                if due <= now or not self._awaits_click(state, facts):
                    facts.pop("held", None)
                    self._decide(state, held[2], f"held:{held[2]}", arrival=True)
                    continue
            elif kind == "refund":
                order = ev.BuyerOrder.FromString(base64.b64decode(held[3]))
                facts = state["orders"].get(order.order_id)
                if facts is None or not facts.get("held"):
                    self._refund(state, order, held[2])
                    continue
            kept.append(held)
        state["held"] = kept
        return clicked and any(h[HELD_KIND] == "order" for h in kept)

    @staticmethod
    def _unhold_click(state: dict[str, Any], click_id: str) -> bool:
        held = state["held"]
        kept = [h for h in held if not (h[HELD_KIND] == "click" and h[4] == click_id)]
        state["held"] = kept
        return len(kept) != len(held)

    def _schedule(self, buyer_id: str, partition: int, state: dict[str, Any]) -> None:
        heapq.heappush(
            self._held.setdefault(partition, []), (min(h[DUE] for h in state["held"]), buyer_id)
        )

    def _release_due(self, partition: int, offset: int, now: float) -> int:
        """The partition's buyers whose held inputs are due by this record's clock (after the
        record's own inputs). Their states take the record's offset as watermark: a re-run
        from before it finds them released, or releases them here again, the same way."""
        held = self._held.get(partition)
        released = 0
        later: list[tuple[float, str]] = []
        while held and held[0][0] <= now:
            due, buyer_id = heapq.heappop(held)
            state = self.buyers.get(buyer_id, partition)
            if state is None or not state.get("held"):
                continue  # released already (a buyer is scheduled once per hold)
            if state.get("wm", -1) > offset:
                # A re-run behind the state restored: it was released at a later record, or
                # will be; not before the records it has seen are passed.
                later.append((due, buyer_id))
                continue
            self._release(state, now)
            state["wm"] = offset
            self.buyers.set(buyer_id, state, partition)
            if state["held"]:
                self._schedule(buyer_id, partition, state)
            released += 1
        for entry in later:
            heapq.heappush(self._held.setdefault(partition, []), entry)
        return released

    async def _send_lines(self) -> None:
        """The timer: pending ledger lines leave at least this often."""
        self._publish_lines()

    # --- outputs ---------------------------------------------------------------------------

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
            worker=self.settings.faust_app_id,
        )
        flagged.clicked_at.CopyFrom(click.at)
        flagged.flagged_at.GetCurrentTime()
        self._emit(INVALID_TOPIC, click.buyer_id, flagged, f"flag:{derived_from}")
        self.metrics.flagged.labels(tr.REASON_NAMES[reason]).inc()

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
            self._windows,
        )
        for fast in decision.too_fast:
            forgotten = at.forget_touch(state, at.CLICK, fast.touch_id)
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
            # Another order may have been credited to it already (orders arrive in any order).
            self._redecide_credited_to(state, forgotten, f"{cause}:{order_id}", order_id)
        c = decision.credit
        new = [c.campaign_id, c.kind, c.touch_id, c.touched_at] if c is not None else None
        old = facts["credit"]
        if new == (old[:CREDIT_ID] if old is not None else None):
            if new is None and arrival:
                self.metrics.unattributed.inc()
            return
        # A credit stands at the order's amount less what was refunded so far (refunds booked
        # before it or on it): a moved credit takes the refunds along, so an order's net credit
        # is the same whichever came first, a refund or the touch that moved the credit.
        net = max(0, facts["amount"] - facts.get("refunded", 0))
        if old is not None:
            self._publish_credit(
                order_id, facts, old, cause, kind=lg.CONVERSION_WITHDRAWN, amount=net
            )
        facts["credit"] = new
        if new is not None:
            new.append(self._credit_id(order_id, facts, c.touch_id if c else ""))
            self._publish_credit(order_id, facts, new, cause, kind=lg.CONVERSION, amount=net)
            if arrival:
                # The worker's lag: paid to first credit. A credit moved later by a touch that
                # arrived late is the data's lateness, counted in the withdrawals instead.
                self.metrics.lag.observe(max(0.0, time.time() - facts["at"]))

    @staticmethod
    def _credit_id(order_id: str, facts: dict[str, Any], touch_id: str) -> str:
        """The attribution id of a new credit: `<order>:<touch>` for an order's first, with the
        number of earlier credits after it for a later one. A credit that moves A, B, then back
        to A gives A a second credit whose id (and event id, and ledger entry id) must differ
        from the first's, or every subscriber would drop it as a duplicate."""
        # States written before credits were numbered: a credit there counts as one.
        given = facts.get("credits", 1 if facts.get("credit") else 0)
        facts["credits"] = given + 1
        return f"{order_id}:{touch_id}" if not given else f"{order_id}:{touch_id}:{given}"

    def _rules_of(self, campaign_id: str) -> tuple[int, int, int]:
        """The campaign's (click window s, view window s, engaged-view ms): its advertiser's
        choice or the platform's. A campaign this process has not seen yet gets the platform's:
        the book learns every campaign at start and at creation (the same process serves the
        API)."""
        found = self._campaign_rules.get(campaign_id)
        if found is not None:
            return found
        rules = self.settings.attribution
        campaign = self._book.campaign(campaign_id)
        if campaign is None:
            return rules.click_window_s, rules.view_window_s, 0
        click_s, view_s = campaign.attribution.windows(rules.click_window_s, rules.view_window_s)
        found = (click_s, view_s, campaign.attribution.engaged_view_ms)
        # Campaigns are never edited: what is found once holds.
        self._campaign_rules[campaign_id] = found
        return found

    def _windows(self, campaign_id: str) -> tuple[int, int]:
        """(click window, view window) in seconds (`attribution.Windows`)."""
        click_s, view_s, _ = self._rules_of(campaign_id)
        return click_s, view_s

    def _model_version(self, campaign_id: str) -> str:
        """The attribution model with the windows that decided for this campaign."""
        click_s, view_s, engaged_ms = self._rules_of(campaign_id)
        engaged = f"/engaged={engaged_ms}ms" if engaged_ms else ""
        return f"{self.settings.attribution.model}/click={click_s}s/view={view_s}s{engaged}"

    def _redecide_credited_to(
        self, state: dict[str, Any], touch_ids: list[str], cause: str, skip: str = ""
    ) -> None:
        """Touches were forgotten (found invalid): the orders credited to them are decided
        again, so none stays credited to an invalid touch, whichever order its inputs came in."""
        if not touch_ids:
            return
        gone = set(touch_ids)
        for order_id, facts in list(state["orders"].items()):
            if order_id != skip and facts and facts["credit"] and facts["credit"][2] in gone:
                self._decide(state, order_id, cause)

    def _reconsider(
        self,
        state: dict[str, Any],
        touch_at: float,
        cause: str,
        *,
        window_s: float,
        views: bool = False,
    ) -> None:
        """A touch arrived: orders it precedes within its campaign's window (`window_s`) may owe
        it their credit. `views`: the new touches are views, which never take a click's credit
        and never count for a buyer without consent, so only orders credited to a view or to
        nothing can move."""
        window = window_s
        for order_id, facts in list(state["orders"].items()):
            # A held order is decided when its grace ends, with every touch known by then.
            if facts is None or "held" in facts or not 0 <= facts["at"] - touch_at <= window:
                continue
            if views and (
                not facts["consent"] or (facts["credit"] and facts["credit"][1] == at.CLICK)
            ):
                continue
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
        campaign_id, touch, touch_id, touched_at = credit[:CREDIT_ID]
        # Credits given before they carried their id had the first credit's.
        credit_id = credit[CREDIT_ID] if len(credit) > CREDIT_ID else f"{order_id}:{touch_id}"
        campaign = self._book.campaign(campaign_id)
        negative = kind in (lg.REFUND, lg.CONVERSION_WITHDRAWN)
        suffix = {
            lg.CONVERSION: "",
            lg.REFUND: f":refund:{cause}",
            lg.CONVERSION_WITHDRAWN: ":withdrawn",
        }[kind]
        out = ev.Attribution(
            attribution_id=f"{credit_id}{suffix}",
            order_id=order_id,
            buyer_id=facts["buyer"],
            campaign_id=campaign_id,
            advertiser_id=campaign.advertiser_id if campaign else "",
            touch=ev.TOUCH_TYPE_CLICK if touch == at.CLICK else ev.TOUCH_TYPE_VIEW,
            touch_id=touch_id,
            refund=kind == lg.REFUND,
            withdrawn=kind == lg.CONVERSION_WITHDRAWN,
            model_version=self._model_version(campaign_id),
            creator_ids=facts["creators"],
            worker=self.settings.faust_app_id,
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

    # --- per campaign ---------------------------------------------------------------------

    async def on_ledger(self, event: Event[Message]) -> Outcome:
        entry = event.message
        assert isinstance(entry, ev.LedgerEntry)
        return await self._apply_line(entry, event.partition)

    async def on_ledger_lines(self, event: Event[Message]) -> Outcome:
        lines = event.message
        assert isinstance(lines, ev.LedgerLines)
        if lines.worker != self.settings.faust_app_id:
            return Outcome.IGNORED  # another deployment's worker, on the same broker
        outcomes, failed = [], []
        for entry in lines.entries:
            try:
                outcomes.append(await self._apply_line(entry, event.partition))
            except InvalidEventError as exc:
                failed.append(f"{entry.entry_id}: {exc}")
        if failed:
            # The record goes to the DLQ with the reason; the lines applied are skipped by id
            # when it is re-driven.
            raise InvalidEventError(f"{len(failed)} ledger line(s) failed: {'; '.join(failed)}")
        return Outcome.PROCESSED if Outcome.PROCESSED in outcomes else Outcome.DUPLICATE

    async def _apply_line(self, entry: ev.LedgerEntry, partition: int) -> Outcome:
        if entry.kind not in LEDGER_KINDS:
            raise InvalidEventError(f"unknown ledger kind {entry.kind}")
        campaign = await self._campaigns.find(entry.campaign_id)
        if campaign is None:
            raise InvalidEventError(f"unknown campaign {entry.campaign_id!r}")
        when = convert.seconds(entry.at)
        # In place, under the table's lock: its flush (at offset commits) then never writes a
        # state whose outputs (budget exhausted) it has not waited for. Nothing below raises
        # for an input: the kind and the campaign were checked above.
        async with self.ledgers.lock:
            state = self.ledgers.get(campaign.campaign_id)
            if state is None:
                state = lg.new_ledger_state()
            # The entry ids applied live in the campaign's own record: one write, no drift.
            if not lg.first_time(state, entry.entry_id):
                return Outcome.DUPLICATE
            if entry.kind in (lg.IMPRESSION, lg.CLICK):
                if entry.served_at_price:
                    applied = lg.apply_served_many(
                        state, campaign, entry.kind, when, dict(entry.served_at_price)
                    )
                else:
                    applied = lg.apply_served(
                        state, campaign, entry.kind, when, entry.amount.amount_minor
                    )
                if entry.kind == lg.CLICK:
                    lg.remember_click(state, entry.entry_id, applied.charge_micros, when)
                for budget in applied.exhausted:
                    self._exhausted(campaign, state, budget, lg.day_of(when))
                if applied.charge_micros:
                    self.metrics.spend.labels(campaign.currency).inc(applied.charge_micros / 1_000)
            elif entry.kind == lg.CLICK_VOIDED:
                original = lg.take_click(state, entry.reverses)
                if original is not None:
                    lg.apply_void(state, original[1], original[0])
            else:
                lg.apply_conversion(state, entry.kind, when, entry.amount.amount_minor)
            self.ledgers.set(campaign.campaign_id, state, partition)
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
