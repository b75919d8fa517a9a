"""The attribution worker's Faust plumbing: the app, the devices, buyers and ledgers tables, and
two agents that route records to the use cases; one applies the combiner's input batches, one
keeps the campaign ledgers.

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
read. Where each behaviour lives:

- a batch record, end to end: usecases/input_batches.py
- screening per install: usecases/screening.py
- touches, the join grace and credit decisions per buyer: usecases/attribution.py
- what a credit publishes: usecases/credits.py; per-campaign windows: usecases/campaign_rules.py
- every output, and the pending ledger lines: usecases/publishing.py
- the ledger agent's lines on the campaign ledgers: usecases/ledger.py

States reach the store and changelogs at offset commits (commit barriers), after every output
is acknowledged; a record applied before a restart is skipped by the state's watermark (`wm`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from google.protobuf.message import Message

from shopstream.ads.v1 import ads_events_pb2 as ev
from shopstream_ads.metrics import AdsMetrics
from shopstream_ads.settings import AdsSettings
from shopstream_ads.stream.combiner import combiner_group
from shopstream_ads.stream.routes import Routes
from shopstream_ads.topics import INPUT_BATCHES_TOPIC, LEDGER_TOPIC, TABLE_PARTITIONS
from shopstream_ads.usecases.attribution import BuyerAttribution
from shopstream_ads.usecases.campaign_book import CampaignBook
from shopstream_ads.usecases.campaign_rules import CampaignRules
from shopstream_ads.usecases.campaigns import Campaigns
from shopstream_ads.usecases.credits import Credits
from shopstream_ads.usecases.input_batches import InputBatches
from shopstream_ads.usecases.ledger import CampaignLedgers
from shopstream_ads.usecases.publishing import LINES_INTERVAL_S, WorkerPublisher
from shopstream_ads.usecases.screening import Screening
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
from shopstream_platform.kafka.events import Event, Handler, Outcome
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.metrics import PlatformMetrics

log = logging.getLogger(__name__)


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
        self._book = book
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

        worker = settings.faust_app_id
        self.publisher = WorkerPublisher(worker, producer, self.outputs, metrics)
        rules = CampaignRules(book, settings)
        credits = Credits(worker, book, rules, self.publisher, metrics)
        self.attribution = BuyerAttribution(
            self.buyers, settings, self.publisher, rules, credits, metrics
        )
        self.input_batches = InputBatches(
            Screening(self.devices, settings, self.publisher),
            self.attribution,
            self.publisher,
            metrics,
        )
        self.campaign_ledgers = CampaignLedgers(
            self.ledgers, campaigns, book, self.publisher, metrics
        )
        self.outputs.defer(self.publisher.publish_lines)
        self._combiner_group = combiner_group(settings)

        def agent(
            name: str, topic: str, routes: dict[type[Message], Handler], batch: Batching
        ) -> None:
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
            Routes().on(ev.AdsInputBatch, self.on_batch).table(),
            Batching(flush=self._after_batch, max_events=64, within_s=0.01),
        )
        agent(
            "ledger",
            LEDGER_TOPIC,
            Routes()
            .on(ev.LedgerEntry, self.on_ledger)
            .on(ev.LedgerLines, self.on_ledger_lines)
            .table(),
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
                self.attribution.schedule(
                    buyer_id, partition_for(buyer_id, TABLE_PARTITIONS), state
                )
        log.info(
            "ads tables recovered",
            extra={"campaigns": len(self.ledgers), "held": self.attribution.held_buyers()},
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

    async def _send_lines(self) -> None:
        """The timer: pending ledger lines leave at least this often."""
        self.publisher.publish_lines()

    # --- routing ----------------------------------------------------------------------------

    async def on_batch(self, event: Event[Message], batch: ev.AdsInputBatch) -> Outcome:
        """Apply one window of one partition (usecases/input_batches.py). A failure ends the
        worker rather than letting the record be dead-lettered: states are changed in place,
        so nothing of a failed batch may be written or committed."""
        if not accepts_batch(event.meta.source, self._combiner_group, self.settings.service_name):
            return Outcome.IGNORED  # another deployment's combiner, on the same broker
        try:
            # The commit barrier's flush waits for this batch rather than writing states it is
            # changing in place (whose outputs it would not have waited for).
            async with self.devices.lock, self.buyers.lock:
                return self.input_batches.apply(batch, event.partition, event.offset)
        except Exception as exc:
            log.critical("input batch failed; ending the worker", extra={"error": repr(exc)})
            self.app.fail(exc)
            await asyncio.Future()  # never returns: the worker is stopping
            raise

    async def on_ledger(self, event: Event[Message], entry: ev.LedgerEntry) -> Outcome:
        return await self.campaign_ledgers.apply(entry, event.partition)

    async def on_ledger_lines(self, event: Event[Message], lines: ev.LedgerLines) -> Outcome:
        if lines.worker != self.settings.faust_app_id:
            return Outcome.IGNORED  # another deployment's worker, on the same broker
        return await self.campaign_ledgers.apply_lines(lines, event.partition)
