"""Ad attribution: attributed orders and GMV per campaign and day, recounted from
ads.attributions.v1 and compared with the exact report (AdsService.GetCampaignReport as the
platform's audit principal: advertisers get noised, thresholded cells).

Per campaign and order the credits add up (+1 a credit, -1 a withdrawn credit, refunds 0) with
the signed amounts; an order counts on the day it was ordered (UTC) while its credits are
positive, with its net amount. Between topics: an order a campaign holds the credit of is worth
what the order events say was paid minus refunded, and one it lost the credit of is worth 0.
A campaign is compared when it was created inside the window by an advertiser (seller) in scope.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from google.protobuf.message import Message

from shopstream.ads.v1 import ads_events_pb2 as ev
from shopstream.ads.v1 import ads_service_pb2 as pb
from shopstream_cli.reconcile.orders import OrderBook
from shopstream_cli.reconcile.report import Report
from shopstream_cli.reconcile.scope import Scope
from shopstream_cli.reconcile.services import AUDIT, Services, ServiceUnavailable
from shopstream_cli.reconcile.source import Topics

CAMPAIGNS_TOPIC = "ads.campaigns.v1"
ATTRIBUTIONS_TOPIC = "ads.attributions.v1"
TOPICS: dict[str, dict[str, type[Message]]] = {
    CAMPAIGNS_TOPIC: {ev.CampaignCreated.DESCRIPTOR.full_name: ev.CampaignCreated},
    ATTRIBUTIONS_TOPIC: {ev.Attribution.DESCRIPTOR.full_name: ev.Attribution},
}


@dataclass
class Credit:
    day: str
    credits: int = 0
    net_minor: int = 0
    creator_ids: tuple[str, ...] = ()


@dataclass
class CampaignTally:
    advertiser_id: str
    orders: dict[str, Credit] = field(default_factory=dict)

    def days(self) -> dict[str, tuple[int, int]]:
        """Day -> (attributed orders, attributed GMV) as the exact report counts them."""
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for credit in self.orders.values():
            out[credit.day]  # a day with only withdrawn credits still shows, with 0
            if credit.credits > 0:
                out[credit.day][0] += 1
                out[credit.day][1] += credit.net_minor
        return {d: (v[0], v[1]) for d, v in sorted(out.items())}


def _day(message: ev.Attribution) -> str:
    at = message.ordered_at.seconds + message.ordered_at.nanos / 1e9
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")


def recount(topics: Topics, scope: Scope) -> dict[str, CampaignTally]:
    campaigns: dict[str, CampaignTally] = {}
    for record in topics.of(CAMPAIGNS_TOPIC):
        campaign = record.message.campaign  # type: ignore[attr-defined]
        if scope.seller(campaign.advertiser_id):
            campaigns.setdefault(campaign.campaign_id, CampaignTally(campaign.advertiser_id))
    for record in topics.of(ATTRIBUTIONS_TOPIC):
        a = record.message
        assert isinstance(a, ev.Attribution)
        tally = campaigns.get(a.campaign_id)
        if tally is None:
            continue
        credit = tally.orders.setdefault(a.order_id, Credit(_day(a)))
        credit.credits += 0 if a.refund else (-1 if a.withdrawn else 1)
        credit.net_minor += a.amount.amount_minor
        if a.creator_ids and not a.refund:
            credit.creator_ids = tuple(a.creator_ids)
    return dict(sorted(campaigns.items()))


def compare(
    campaigns: dict[str, CampaignTally], book: OrderBook, services: Services, report: Report
) -> None:
    days = report.check(
        "ads.attributed",
        "per campaign and day: attributed orders and GMV from the attributions topic vs the "
        "audit report",
    )
    value = report.check(
        "ads.order_value",
        "per campaign and order: the attributed net vs the order's paid - refunded (orders "
        "topic; 0 once the credit moved)",
    )
    for campaign_id, tally in campaigns.items():
        for order_id, credit in sorted(tally.orders.items()):
            order = book.orders.get(order_id)
            if order is None or not order.placed:
                continue
            expected = order.paid_minor - order.refunded_minor if credit.credits > 0 else 0
            value.compare(f"{campaign_id}/{order_id}", expected, credit.net_minor)
    ids = list(campaigns)
    try:
        answers = services.calls(
            services.ads.GetCampaignReport,
            [pb.GetCampaignReportRequest(campaign_id=c) for c in ids],
            principal=AUDIT,
            service="ads",
        )
    except ServiceUnavailable as exc:
        days.skip_for(exc)
        return
    for campaign_id, answer in zip(ids, answers, strict=True):
        mine = campaigns[campaign_id].days()
        if answer is None:
            days.compare(campaign_id, len(mine), None, "ads does not know the campaign")
            continue
        got = {
            r.day: (r.attributed_orders, r.attributed_gmv.amount_minor)
            for r in answer.days
            if r.attributed_orders or r.attributed_gmv.amount_minor or r.day in mine
        }
        for day in sorted(set(mine) | set(got)):
            days.compare(f"{campaign_id} {day} orders,gmv", mine.get(day), got.get(day))
    report.totals["ads"] = {
        "campaigns": len(campaigns),
        "attributed_orders": sum(
            1 for t in campaigns.values() for c in t.orders.values() if c.credits > 0
        ),
        "attributed_gmv_minor": sum(
            c.net_minor for t in campaigns.values() for c in t.orders.values() if c.credits > 0
        ),
    }
