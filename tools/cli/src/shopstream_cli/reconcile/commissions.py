"""Creators' commission ledgers recounted from commerce.commissions.v1 (each entry once) and
compared with CommerceService.GetCreatorEarnings: balance, pending, available and frozen.

Also recounted, without a service number to compare it with: each creator's paid GMV and
refunds from the order lines that name them (creator-score's GMV is decayed, so not exact).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from google.protobuf.message import Message

from shopstream.commerce.v1 import commerce_service_pb2 as pb
from shopstream.commerce.v1 import commissions_pb2 as cm
from shopstream.common.v1.paging_pb2 import PageRequest
from shopstream_cli.reconcile.orders import OrderBook
from shopstream_cli.reconcile.report import Report
from shopstream_cli.reconcile.scope import Scope
from shopstream_cli.reconcile.services import Services, ServiceUnavailable
from shopstream_cli.reconcile.source import Topics

COMMISSIONS_TOPIC = "commerce.commissions.v1"
TOPICS: dict[str, dict[str, type[Message]]] = {
    COMMISSIONS_TOPIC: {cm.LedgerEntryRecorded.DESCRIPTOR.full_name: cm.LedgerEntryRecorded},
}
ACCOUNTS = {
    cm.LEDGER_ACCOUNT_PENDING: "pending",
    cm.LEDGER_ACCOUNT_AVAILABLE: "available",
    cm.LEDGER_ACCOUNT_FROZEN: "frozen",
}
PAGE = 500


@dataclass
class CreatorLedger:
    entries: dict[str, cm.LedgerEntry] = field(default_factory=dict)

    def account(self, account: int) -> int:
        return sum(e.amount.amount_minor for e in self.entries.values() if e.account == account)

    @property
    def balance(self) -> int:
        return sum(e.amount.amount_minor for e in self.entries.values())


def recount(topics: Topics, scope: Scope) -> dict[str, CreatorLedger]:
    ledgers: dict[str, CreatorLedger] = defaultdict(CreatorLedger)
    for record in topics.of(COMMISSIONS_TOPIC):
        entry = record.message.entry  # type: ignore[attr-defined]
        if scope.creator(entry.creator_id):
            ledgers[entry.creator_id].entries.setdefault(entry.entry_id, entry)
    return dict(sorted(ledgers.items()))


def creator_sales(book: OrderBook, scope: Scope) -> dict[str, dict[str, int]]:
    """Paid GMV and refunds per creator from the order lines that name them."""
    sales: dict[str, dict[str, int]] = defaultdict(lambda: {"paid_minor": 0, "refunded_minor": 0})
    for order in book.in_scope(Scope(sellers=())):
        refunded_per_line: dict[str, int] = defaultdict(int)
        for line_id, units in order.refunded_units.items():
            line = order.lines.get(line_id)
            if line is not None and line.quantity:
                refunded_per_line[line_id] = line.total_minor * units // line.quantity
        for line in order.lines.values():
            if not line.creator_id or not scope.creator(line.creator_id):
                continue
            if order.paid:
                sales[line.creator_id]["paid_minor"] += line.total_minor * order.payments
            sales[line.creator_id]["refunded_minor"] += refunded_per_line.get(line.line_id, 0)
    return dict(sorted(sales.items()))


def _earnings(services: Services, creator_id: str) -> pb.GetCreatorEarningsResponse | None:
    answer = services.call(
        services.commerce.GetCreatorEarnings,
        pb.GetCreatorEarningsRequest(creator_id=creator_id, page=PageRequest(page_size=1)),
        service="commerce",
    )
    return answer  # type: ignore[no-any-return]


def compare(
    ledgers: dict[str, CreatorLedger], scope: Scope, services: Services, report: Report
) -> None:
    check = report.check(
        "commissions.balance",
        "per creator: balance, pending, available, frozen from the ledger topic vs "
        "GetCreatorEarnings",
    )
    if not scope.creators_complete:
        check.skip(
            "a start time without creator prefixes: creators' histories may be cut",
            unavailable=False,
        )
        return
    try:
        answers = {c: _earnings(services, c) for c in ledgers}
    except ServiceUnavailable as exc:
        check.skip_for(exc)
        return
    for creator_id, ledger in ledgers.items():
        answer = answers[creator_id]
        if answer is None:
            check.compare(creator_id, ledger.balance, None, "commerce does not know the creator")
            continue
        check.compare(f"{creator_id} balance", ledger.balance, answer.balance.amount_minor)
        for account, name in ACCOUNTS.items():
            check.compare(
                f"{creator_id} {name}", ledger.account(account), getattr(answer, name).amount_minor
            )
    report.totals["commissions"] = {
        "creators": len(ledgers),
        "balance_minor": sum(ledger.balance for ledger in ledgers.values()),
    }
