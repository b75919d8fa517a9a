"""Sellers' money: paid GMV and refunds per seller and in total, recounted from the order events,
and each seller's ledger recounted from commerce.seller-ledger.v1.

Compared with CommerceService.GetSellerBalance (every page of entries): the SALE and REFUND
entries against the order recount, the balance and its accounts against the sum of the ledger
topic's entries; the ledger topic's SALE and REFUND entries against the order recount is a check
between topics. A seller is compared only when its registration (catalog.sellers.v1) is inside
the window, so every order and entry of it is.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from google.protobuf.message import Message

from shopstream.catalog.v1 import events_pb2 as catalog_ev
from shopstream.commerce.v1 import commerce_service_pb2 as pb
from shopstream.commerce.v1 import commissions_pb2 as cm
from shopstream.common.v1.paging_pb2 import PageRequest
from shopstream_cli.reconcile.orders import OrderBook
from shopstream_cli.reconcile.report import Report
from shopstream_cli.reconcile.scope import Scope
from shopstream_cli.reconcile.services import Services, ServiceUnavailable
from shopstream_cli.reconcile.source import Topics

SELLERS_TOPIC = "catalog.sellers.v1"
LEDGER_TOPIC = "commerce.seller-ledger.v1"
TOPICS: dict[str, dict[str, type[Message]]] = {
    SELLERS_TOPIC: {catalog_ev.SellerRegistered.DESCRIPTOR.full_name: catalog_ev.SellerRegistered},
    LEDGER_TOPIC: {cm.SellerLedgerEntryRecorded.DESCRIPTOR.full_name: cm.SellerLedgerEntryRecorded},
}
PAGE = 500
ACCOUNTS = {cm.LEDGER_ACCOUNT_PENDING: "pending", cm.LEDGER_ACCOUNT_AVAILABLE: "available"}


@dataclass
class SellerTally:
    paid_minor: int = 0
    refunded_minor: int = 0
    # From the ledger topic, each entry once.
    entries: dict[str, cm.SellerLedgerEntry] = field(default_factory=dict)

    def ledger_sum(self, *kinds: int) -> int:
        return sum(e.amount.amount_minor for e in self.entries.values() if e.kind in kinds)

    def account(self, account: int) -> int:
        return sum(e.amount.amount_minor for e in self.entries.values() if e.account == account)


def recount(topics: Topics, book: OrderBook, scope: Scope) -> dict[str, SellerTally]:
    registered = {
        r.message.seller.seller_id  # type: ignore[attr-defined]
        for r in topics.of(SELLERS_TOPIC)
    }
    tallies: dict[str, SellerTally] = defaultdict(SellerTally)
    for order in book.orders.values():
        if not order.placed:
            continue
        if order.paid:
            for line in order.lines.values():
                tallies[line.seller_id].paid_minor += line.total_minor * order.payments
        for seller_id, amount in order.refunded_by_seller.items():
            tallies[seller_id].refunded_minor += amount
    for record in topics.of(LEDGER_TOPIC):
        entry = record.message.entry  # type: ignore[attr-defined]
        tallies[entry.seller_id].entries.setdefault(entry.entry_id, entry)
    complete = {
        s
        for s in (registered if scope.since is not None else set(tallies) | registered)
        if s and scope.seller(s)  # no seller id: a test's hand-made order, not a seller's
    }
    return {s: tallies[s] for s in sorted(complete)}


def _entries(services: Services, seller_id: str) -> pb.GetSellerBalanceResponse | None:
    """The balance with every entry (all pages), or None when commerce does not know the seller."""
    first: pb.GetSellerBalanceResponse | None = None
    token = ""
    while True:
        answer = services.call(
            services.commerce.GetSellerBalance,
            pb.GetSellerBalanceRequest(
                seller_id=seller_id, page=PageRequest(page_size=PAGE, page_token=token)
            ),
            service="commerce",
        )
        if answer is None:
            return first
        if first is None:
            first = answer
        else:
            first.entries.extend(answer.entries)
        token = answer.page.next_page_token
        if not token:
            return first


def compare(
    tallies: dict[str, SellerTally], book: OrderBook, services: Services, report: Report
) -> None:
    gmv = report.check("sellers.paid_gmv", "paid GMV per seller: order events vs SALE entries")
    refunds = report.check(
        "sellers.refunds", "refunds per seller: OrderRefunded lines vs REFUND entries"
    )
    topic_gmv = report.check(
        "sellers.ledger_topic_vs_orders",
        "per seller: the ledger topic's SALE and REFUND entries vs the order events",
    )
    balance = report.check(
        "sellers.balance",
        "per seller: balance, pending and available from the ledger topic vs GetSellerBalance",
    )
    total = report.check(
        "totals.paid_gmv", "paid GMV and refunds in total (sellers in scope) vs the services' sum"
    )
    recounted_total = [0, 0]
    service_total = [0, 0]
    for seller_id, t in tallies.items():
        topic_gmv.compare(
            f"{seller_id} sale", t.paid_minor, t.ledger_sum(cm.SELLER_ENTRY_KIND_SALE)
        )
        topic_gmv.compare(
            f"{seller_id} refund", -t.refunded_minor, t.ledger_sum(cm.SELLER_ENTRY_KIND_REFUND)
        )
        recounted_total[0] += t.paid_minor
        recounted_total[1] += t.refunded_minor
    try:
        answers = {s: _entries(services, s) for s in tallies}
    except ServiceUnavailable as exc:
        for check in (gmv, refunds, balance, total):
            check.skip_for(exc)
        return
    for seller_id, t in tallies.items():
        answer = answers[seller_id]
        if answer is None:
            if t.paid_minor or t.entries:
                gmv.compare(seller_id, t.paid_minor, None, "commerce does not know the seller")
            continue
        sale = sum(
            e.amount.amount_minor for e in answer.entries if e.kind == cm.SELLER_ENTRY_KIND_SALE
        )
        refund = -sum(
            e.amount.amount_minor for e in answer.entries if e.kind == cm.SELLER_ENTRY_KIND_REFUND
        )
        service_total[0] += sale
        service_total[1] += refund
        gmv.compare(seller_id, t.paid_minor, sale)
        refunds.compare(seller_id, t.refunded_minor, refund)
        balance.compare(
            f"{seller_id} balance",
            sum(e.amount.amount_minor for e in t.entries.values()),
            answer.balance.amount_minor,
        )
        for account, name in ACCOUNTS.items():
            balance.compare(
                f"{seller_id} {name}", t.account(account), getattr(answer, name).amount_minor
            )
    total.compare("paid GMV", recounted_total[0], service_total[0])
    total.compare("refunds", recounted_total[1], service_total[1])
    report.totals["sellers"] = {
        "compared": len(tallies),
        "paid_minor": recounted_total[0],
        "refunded_minor": recounted_total[1],
    }
