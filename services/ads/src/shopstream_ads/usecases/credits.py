"""A change of an order's credit, published: the `Attribution` subscribers read (credit, refund
or withdrawal), the conversion line the ledger books on the order's day, and the metrics.

Which touch an order's credit goes to is decided in usecases/attribution.py (rules in
domain/attribution.py); this module only says it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shopstream.ads.v1 import ads_events_pb2 as ev
from shopstream_ads import convert
from shopstream_ads.domain import attribution as at
from shopstream_ads.domain import ledger as lg
from shopstream_ads.metrics import AdsMetrics
from shopstream_ads.topics import ATTRIBUTIONS_TOPIC
from shopstream_ads.usecases.campaign_book import CampaignBook
from shopstream_ads.usecases.campaign_rules import CampaignRules
from shopstream_ads.usecases.publishing import WorkerPublisher

TOUCH_NAMES = {at.CLICK: "click", at.VIEW: "view"}
# An order's credit: [campaign id, touch kind, touch id, touched at, attribution id].
CREDIT_ID = 4


class Credits:
    def __init__(
        self,
        worker: str,
        book: CampaignBook,
        rules: CampaignRules,
        publisher: WorkerPublisher,
        metrics: AdsMetrics,
    ) -> None:
        self._worker = worker
        self._book = book
        self._rules = rules
        self._publisher = publisher
        self._metrics = metrics

    @staticmethod
    def next_id(order_id: str, facts: dict[str, Any], touch_id: str) -> str:
        """The attribution id of a new credit: `<order>:<touch>` for an order's first, with the
        number of earlier credits after it for a later one. A credit that moves A, B, then back
        to A gives A a second credit whose id (and event id, and ledger entry id) must differ
        from the first's, or every subscriber would drop it as a duplicate."""
        # States written before credits were numbered: a credit there counts as one.
        given = facts.get("credits", 1 if facts.get("credit") else 0)
        facts["credits"] = given + 1
        return f"{order_id}:{touch_id}" if not given else f"{order_id}:{touch_id}:{given}"

    def publish(
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
            model_version=self._rules.model_version(campaign_id),
            creator_ids=facts["creators"],
            worker=self._worker,
        )
        out.touched_at.FromDatetime(datetime.fromtimestamp(touched_at, UTC))
        out.ordered_at.FromDatetime(datetime.fromtimestamp(facts["at"], UTC))
        currency = facts["currency"]
        out.amount.currency = currency
        out.amount.amount_minor = -amount if negative else amount
        self._publisher.emit(
            ATTRIBUTIONS_TOPIC, campaign_id, out, f"attribution:{out.attribution_id}"
        )
        # The ledger books every change on the order's own day, so a day's GMV nets them.
        self._publisher.ledger(
            campaign_id,
            kind,
            f"conv:{out.attribution_id}",
            facts["at"],
            convert.money(amount, currency),
        )
        metrics = self._metrics
        if kind == lg.REFUND:
            metrics.attributed_refunds.labels(currency).inc(amount)
        elif kind == lg.CONVERSION_WITHDRAWN:
            metrics.withdrawn.labels(TOUCH_NAMES[touch]).inc()
            metrics.withdrawn_gmv.labels(currency).inc(amount)
        else:
            metrics.attributions.labels(TOUCH_NAMES[touch]).inc()
            metrics.attributed_gmv.labels(currency).inc(amount)
