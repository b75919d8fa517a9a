"""What the attribution worker publishes: screened clicks, flags, voids, ledger lines, credits
and budget exhaustions all leave through `WorkerPublisher`.

Every output is produced at once and acknowledged before the state that records having emitted
it is written (the tables flush after the outputs' acks, at offset commits:
shopstream_platform.faust_batch); outputs carry ids derived from what they come from, so a
re-run re-emits identical events that the next stage deduplicates.

Ledger lines gather per ledger partition into one `LedgerLines` record: the ledger agent then
gets a few records per 100 ms, not one per click, conversion and batch. Impressions reach the
ledger as one line per campaign, day and batch record (counts per clearing price).
"""

from __future__ import annotations

import base64
from collections import Counter
from datetime import UTC, datetime

from google.protobuf.message import Message

from shopstream.ads.v1 import ads_events_pb2 as ev
from shopstream.ads.v1 import ads_pb2
from shopstream.common.v1 import money_pb2
from shopstream_ads import convert
from shopstream_ads.domain import ledger as lg
from shopstream_ads.domain import traffic as tr
from shopstream_ads.metrics import AdsMetrics
from shopstream_ads.topics import INVALID_TOPIC, LEDGER_TOPIC, TABLE_PARTITIONS
from shopstream_platform.combiner import partition_for
from shopstream_platform.faust_batch import StreamOutputs
from shopstream_platform.kafka.producer import EventProducer

# How often pending ledger lines are sent at least (the worker's timer, stream/agents.py).
LINES_INTERVAL_S = 0.1
# A ledger partition's pending lines are sent once this many wait (about 100 bytes each).
MAX_LINES_PER_RECORD = 2_000


def entry_id(kind: str, ident: str) -> str:
    """A ledger line's id from what it books: the same input gives the same id on a re-run."""
    return f"{kind}:{ident}"


def pack(message: Message) -> str:
    """A message kept inside a JSON table state (held inputs)."""
    return base64.b64encode(message.SerializeToString()).decode()


class BatchSpend:
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


class WorkerPublisher:
    """The worker's outputs. `worker` is its Faust app id: written into every output, so the
    consumers of a deployment keep only their own worker's (usecases/worker_outputs.py)."""

    def __init__(
        self,
        worker: str,
        producer: EventProducer,
        outputs: StreamOutputs,
        metrics: AdsMetrics,
    ) -> None:
        self._worker = worker
        self._producer = producer
        self._outputs = outputs
        self._metrics = metrics
        # Ledger lines not yet sent, per ledger partition (`add_line`).
        self._lines: dict[int, ev.LedgerLines] = {}

    def emit(
        self, topic: str, key: str, message: Message, derived_from: str, at: float | None = None
    ) -> None:
        """Produce now; the states wait for the acknowledgements before they are written."""
        meta = self._producer.meta_for(
            message,
            subject=key,
            derived_from=derived_from,
            time=datetime.fromtimestamp(at, UTC) if at else None,
        )
        self._outputs.publish(topic, key, message, meta)

    # --- ledger lines -----------------------------------------------------------------------

    def ledger(
        self,
        campaign_id: str,
        kind: int,
        entry_id: str,
        when: float,
        amount: money_pb2.Money | None = None,
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
        self.add_line(entry)

    def spend_lines(self, spend: BatchSpend, partition: int, offset: int) -> None:
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
            self.add_line(entry)

    def add_line(self, entry: ev.LedgerEntry) -> None:
        """Into the ledger partition's pending `LedgerLines`. Each line keeps its own id
        (derived from its input), which the ledger deduplicates however lines are grouped."""
        partition = partition_for(entry.campaign_id, TABLE_PARTITIONS)
        lines = self._lines.get(partition)
        if lines is None:
            lines = self._lines[partition] = ev.LedgerLines(worker=self._worker)
        lines.entries.append(entry)
        if len(lines.entries) >= MAX_LINES_PER_RECORD:
            self._publish_lines_of(partition)

    def publish_lines(self) -> None:
        """Send every pending `LedgerLines`: on the worker's timer, and before any state is
        written (`StreamOutputs.defer`), so a state never records inputs whose lines are unsent."""
        for partition in list(self._lines):
            self._publish_lines_of(partition)

    def _publish_lines_of(self, partition: int) -> None:
        lines = self._lines.pop(partition)
        first = lines.entries[0]
        # Keyed by one of its campaigns: the partitioner puts it in their partition.
        self.emit(
            LEDGER_TOPIC,
            first.campaign_id,
            lines,
            f"ledger-lines:{first.entry_id}:{len(lines.entries)}",
            convert.seconds(first.at),
        )

    # --- invalid clicks -----------------------------------------------------------------------

    def flag(
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
            worker=self._worker,
        )
        flagged.clicked_at.CopyFrom(click.at)
        flagged.flagged_at.GetCurrentTime()
        self.emit(INVALID_TOPIC, click.buyer_id, flagged, f"flag:{derived_from}")
        self._metrics.flagged.labels(tr.REASON_NAMES[reason]).inc()

    def void(self, click: ads_pb2.Click, reason: int, detail: str, cause: str) -> None:
        """A click billed before it was found invalid: reverse its charge, report it."""
        self.ledger(
            click.campaign_id,
            lg.CLICK_VOIDED,
            entry_id("void", click.click_id),
            convert.seconds(click.at),
            reverses=entry_id("click", click.click_id),
        )
        self.flag(click, reason, detail, f"{cause}:{click.click_id}", reversed_charge=True)
