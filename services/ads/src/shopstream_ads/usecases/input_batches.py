"""One batch record of the combiner: a window of one partition's clicks, impressions, screened
clicks and orders, applied in one pass.

Per install its clicks are screened (usecases/screening.py), per buyer its inputs applied
(usecases/attribution.py), then the buyers whose held inputs are due by the record's clock are
released, and the record's impressions go to the ledger as one line per campaign and day
(usecases/publishing.py). The stream's inputs agent routes every batch record here
(stream/agents.py).
"""

from __future__ import annotations

import time

from shopstream.ads.v1 import ads_events_pb2 as ev
from shopstream_ads import convert
from shopstream_ads.metrics import AdsMetrics
from shopstream_ads.usecases.attribution import BuyerAttribution
from shopstream_ads.usecases.publishing import BatchSpend, WorkerPublisher
from shopstream_ads.usecases.screening import Screening
from shopstream_platform.kafka.events import Outcome


class InputBatches:
    def __init__(
        self,
        screening: Screening,
        buyers: BuyerAttribution,
        publisher: WorkerPublisher,
        metrics: AdsMetrics,
    ) -> None:
        self._screening = screening
        self._buyers = buyers
        self._publisher = publisher
        self._metrics = metrics

    def apply(self, batch: ev.AdsInputBatch, partition: int, offset: int) -> Outcome:
        """Per install its clicks, per buyer its inputs, each state changed in place and set
        once. No await inside: nothing interleaves. The inputs agent is the only writer of the
        devices and buyers tables.

        The record's clock is the combiner's event time (`watermark`), not this process's:
        holding and releasing inputs then happen at the same point of the stream when a record
        is applied again after a crash, and when the combiner catches up on a backlog, and so
        do the decisions that depend on them."""
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
        screen = self._screening.screen
        for install, clicks in installs.items():
            applied += screen(install, clicks, partition, offset, now)
        spend = BatchSpend()
        apply_buyer = self._buyers.apply
        for buyer_id, items in buyers.items():
            applied += apply_buyer(buyer_id, items, partition, offset, spend, now)
        applied += self._buyers.release_due(partition, offset, now)
        self._publisher.spend_lines(spend, partition, offset)
        for placement, count in spend.placements.items():
            self._metrics.impressions.labels(placement).inc(count)
        if applied:
            return Outcome.PROCESSED
        # A tick that released nothing is not a duplicate on the dashboards.
        return Outcome.DUPLICATE if batch.inputs else Outcome.IGNORED
