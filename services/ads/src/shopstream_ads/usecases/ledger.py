"""The campaign ledgers: the worker's ledger lines (spend, clicks, voids, conversions) applied
to each campaign's ledger record (domain/ledger.py), budgets enforced, exhaustion published,
and every change mirrored into the book the API reads (usecases/campaign_book.py).

The ledger agent (stream/agents.py) routes every `LedgerEntry` and `LedgerLines` record here.
The entry ids a ledger applied live in its own record, so a line sent again (a batch record
applied again after a crash) is skipped by id however lines are grouped.
"""

from __future__ import annotations

import logging
from typing import Any

from shopstream.ads.v1 import ads_events_pb2 as ev
from shopstream_ads import convert
from shopstream_ads.domain import ledger as lg
from shopstream_ads.domain.campaigns import Campaign
from shopstream_ads.metrics import AdsMetrics
from shopstream_ads.topics import CAMPAIGNS_TOPIC
from shopstream_ads.usecases.campaign_book import CampaignBook
from shopstream_ads.usecases.campaigns import Campaigns
from shopstream_ads.usecases.publishing import WorkerPublisher
from shopstream_platform.faust_batch import BatchedTable
from shopstream_platform.kafka.events import InvalidEventError, Outcome

log = logging.getLogger(__name__)

LEDGER_KINDS = frozenset(
    (lg.IMPRESSION, lg.CLICK, lg.CLICK_VOIDED, lg.CONVERSION, lg.REFUND, lg.CONVERSION_WITHDRAWN)
)


class CampaignLedgers:
    def __init__(
        self,
        ledgers: BatchedTable,
        campaigns: Campaigns,
        book: CampaignBook,
        publisher: WorkerPublisher,
        metrics: AdsMetrics,
    ) -> None:
        self._ledgers = ledgers
        self._campaigns = campaigns
        self._book = book
        self._publisher = publisher
        self._metrics = metrics

    async def apply_lines(self, lines: ev.LedgerLines, partition: int) -> Outcome:
        """Every line of a `LedgerLines` record; lines that fail (unknown kind or campaign) send
        the record to the DLQ with the reasons, after the others were applied."""
        outcomes, failed = [], []
        for entry in lines.entries:
            try:
                outcomes.append(await self.apply(entry, partition))
            except InvalidEventError as exc:
                failed.append(f"{entry.entry_id}: {exc}")
        if failed:
            # The record goes to the DLQ with the reason; the lines applied are skipped by id
            # when it is re-driven.
            raise InvalidEventError(f"{len(failed)} ledger line(s) failed: {'; '.join(failed)}")
        return Outcome.PROCESSED if Outcome.PROCESSED in outcomes else Outcome.DUPLICATE

    async def apply(self, entry: ev.LedgerEntry, partition: int) -> Outcome:
        if entry.kind not in LEDGER_KINDS:
            raise InvalidEventError(f"unknown ledger kind {entry.kind}")
        campaign = await self._campaigns.find(entry.campaign_id)
        if campaign is None:
            raise InvalidEventError(f"unknown campaign {entry.campaign_id!r}")
        when = convert.seconds(entry.at)
        # In place, under the table's lock: its flush (at offset commits) then never writes a
        # state whose outputs (budget exhausted) it has not waited for. Nothing below raises
        # for an input: the kind and the campaign were checked above.
        async with self._ledgers.lock:
            state = self._ledgers.get(campaign.campaign_id)
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
                    self._metrics.spend.labels(campaign.currency).inc(applied.charge_micros / 1_000)
            elif entry.kind == lg.CLICK_VOIDED:
                original = lg.take_click(state, entry.reverses)
                if original is not None:
                    lg.apply_void(state, original[1], original[0])
            else:
                lg.apply_conversion(state, entry.kind, when, entry.amount.amount_minor)
            self._ledgers.set(campaign.campaign_id, state, partition)
            self._book.put_ledger(campaign.campaign_id, state)
        return Outcome.PROCESSED

    def _exhausted(self, campaign: Campaign, state: dict[str, Any], budget: str, day: str) -> None:
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
        self._publisher.emit(
            CAMPAIGNS_TOPIC,
            campaign.campaign_id,
            out,
            f"exhausted:{campaign.campaign_id}:{budget}:{out.day}",
        )
        self._metrics.budget_exhausted.labels(budget).inc()
        log.info(
            "campaign budget exhausted",
            extra={"campaign_id": campaign.campaign_id, "budget": budget},
        )
