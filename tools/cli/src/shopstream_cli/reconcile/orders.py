"""Orders, payments and refunds recounted from commerce.orders.v1 and commerce.payments.v1.

Per order: the state and version of its newest snapshot, the units refunded per line (summed
from OrderRefunded, each refund once), what was paid (OrderPaid) and refunded (OrderRefunded),
and what the payment provider holds (succeeded attempts minus provider refunds). Compared with
CommerceService.GetOrder and GetOrderSettlement; the provider's net against the order's net is
a check between the two topics.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from google.protobuf.message import Message

from shopstream.commerce.v1 import commerce_service_pb2 as pb
from shopstream.commerce.v1 import order_events_pb2 as ev
from shopstream.commerce.v1 import payment_events_pb2 as pay
from shopstream.commerce.v1.order_pb2 import Order, OrderState
from shopstream_cli.reconcile.report import Report
from shopstream_cli.reconcile.scope import Scope
from shopstream_cli.reconcile.services import Services, ServiceUnavailable
from shopstream_cli.reconcile.source import ANY_TYPE, Topics

ORDERS_TOPIC = "commerce.orders.v1"
PAYMENTS_TOPIC = "commerce.payments.v1"
_ORDER_EVENTS: tuple[type[Message], ...] = (
    ev.OrderPlaced,
    ev.OrderReserved,
    ev.OrderRejected,
    ev.OrderPaid,
    ev.OrderShipped,
    ev.OrderDelivered,
    ev.OrderCancelled,
    ev.OrderExpired,
    ev.OrderRefunded,
    ev.OrderCompleted,
)
TOPICS: dict[str, dict[str, type[Message]]] = {
    # Every type: an order event added later still carries the snapshot (state and version).
    ORDERS_TOPIC: {ANY_TYPE: Message, **{cls.DESCRIPTOR.full_name: cls for cls in _ORDER_EVENTS}},
    PAYMENTS_TOPIC: {
        cls.DESCRIPTOR.full_name: cls for cls in (pay.PaymentAttempted, pay.PaymentRefunded)
    },
}


@dataclass
class Line:
    line_id: str
    seller_id: str
    product_id: str
    creator_id: str
    live_session_id: str
    quantity: int
    total_minor: int


@dataclass
class OrderTally:
    order_id: str
    placed: bool = False
    version: int = -1
    state: int = 0
    currency: str = ""
    lines: dict[str, Line] = field(default_factory=dict)
    paid_minor: int = 0
    payments: int = 0
    refunds: dict[str, int] = field(default_factory=dict)
    refunded_units: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    refunded_by_seller: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    charged_minor: int = 0
    provider_refunded_minor: int = 0

    @property
    def refunded_minor(self) -> int:
        return sum(self.refunds.values())

    @property
    def sellers(self) -> set[str]:
        return {line.seller_id for line in self.lines.values()}

    @property
    def paid(self) -> bool:
        return self.payments > 0


@dataclass
class OrderBook:
    """Every order of the window, and which of them the reconcile compares."""

    orders: dict[str, OrderTally] = field(default_factory=dict)
    # Orders whose first events are before the window (placed earlier): not compared.
    partial: int = 0

    def in_scope(self, scope: Scope) -> list[OrderTally]:
        return [
            o for o in self.orders.values() if o.placed and any(scope.seller(s) for s in o.sellers)
        ]


def recount(topics: Topics) -> OrderBook:
    book = OrderBook()
    for record in topics.of(ORDERS_TOPIC):
        message = record.message
        order = getattr(message, "order", None)
        if not isinstance(order, Order):
            continue  # not an order event (no snapshot): nothing to recount
        tally = book.orders.setdefault(order.order_id, OrderTally(order.order_id))
        if isinstance(message, ev.OrderPlaced):
            tally.placed = True
        if order.version > tally.version:
            tally.version = order.version
            tally.state = order.state
            tally.currency = order.total.currency
            tally.lines = {
                line.line_id: Line(
                    line.line_id,
                    line.seller_id,
                    line.product_id,
                    line.attribution.creator_id,
                    line.attribution.live_session_id,
                    line.quantity,
                    line.line_total.amount_minor,
                )
                for line in order.lines
            }
        if isinstance(message, ev.OrderPaid):
            tally.payments += 1
            tally.paid_minor += order.total.amount_minor
        elif isinstance(message, ev.OrderRefunded):
            if message.refund_id in tally.refunds:
                continue  # the same refund published twice under two ids: count it once
            tally.refunds[message.refund_id] = message.amount.amount_minor
            for line in message.lines:
                tally.refunded_units[line.line_id] += line.quantity
                tally.refunded_by_seller[line.seller_id] += line.amount.amount_minor
    for record in topics.of(PAYMENTS_TOPIC):
        message = record.message
        tally = book.orders.setdefault(
            message.order_id,  # type: ignore[attr-defined]
            OrderTally(message.order_id),  # type: ignore[attr-defined]
        )
        if isinstance(message, pay.PaymentAttempted):
            if message.status == pay.PAYMENT_STATUS_SUCCEEDED:
                tally.charged_minor += message.amount.amount_minor
        elif isinstance(message, pay.PaymentRefunded):
            tally.provider_refunded_minor += message.amount.amount_minor
    book.partial = sum(1 for o in book.orders.values() if not o.placed)
    return book


def _state(value: int) -> str:
    try:
        return OrderState.Name(OrderState.ValueType(value)).removeprefix("ORDER_STATE_")
    except ValueError:
        return str(value)


def compare(book: OrderBook, scope: Scope, services: Services, report: Report) -> None:
    orders = sorted(book.in_scope(scope), key=lambda o: o.order_id)
    state = report.check("orders.state", "each order's state: newest snapshot vs GetOrder")
    version = report.check("orders.version", "each order's version: newest snapshot vs GetOrder")
    units = report.check(
        "orders.refunded_units", "units refunded per order line: sum of OrderRefunded vs GetOrder"
    )
    provider = report.check(
        "payments.provider_net",
        "per order: succeeded charges - provider refunds (payments topic) vs paid - refunded "
        "(orders topic)",
    )
    paid = report.check("settlements.paid", "per paid order: OrderPaid total vs GetOrderSettlement")
    refunded = report.check(
        "settlements.refunds", "per paid order: sum of OrderRefunded vs GetOrderSettlement"
    )
    if book.partial:
        report.notes.append(
            f"{book.partial} orders placed before the window were seen and not compared"
        )
    for o in orders:
        provider.compare(
            o.order_id,
            o.paid_minor - o.refunded_minor,
            o.charged_minor - o.provider_refunded_minor,
            "provider net differs from the order's paid - refunded",
        )
    try:
        answers = services.calls(
            services.commerce.GetOrder,
            [pb.GetOrderRequest(order_id=o.order_id) for o in orders],
            service="commerce",
        )
    except ServiceUnavailable as exc:
        for check in (state, version, units):
            check.skip_for(exc)
        answers = []
    for o, answer in zip(orders, answers, strict=False):
        if answer is None:
            state.compare(o.order_id, _state(o.state), None, "commerce does not know the order")
            continue
        got = answer.order
        state.compare(o.order_id, _state(o.state), _state(got.state))
        version.compare(o.order_id, o.version, got.version)
        for line in got.lines:
            units.compare(
                f"{o.order_id}/{line.line_id}",
                o.refunded_units.get(line.line_id, 0),
                line.refunded_quantity,
            )
    paid_orders = [o for o in orders if o.paid]
    try:
        settlements = services.calls(
            services.commerce.GetOrderSettlement,
            [pb.GetOrderSettlementRequest(order_id=o.order_id) for o in paid_orders],
            service="commerce",
        )
    except ServiceUnavailable as exc:
        paid.skip_for(exc)
        refunded.skip_for(exc)
        settlements = []
    for o, answer in zip(paid_orders, settlements, strict=False):
        s = answer.settlement if answer is not None else None
        paid.compare(o.order_id, o.paid_minor, s.paid.amount_minor if s else None)
        refunded.compare(o.order_id, o.refunded_minor, s.refunds.amount_minor if s else None)
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for o in orders:
        t = totals[o.currency or "?"]
        t["orders"] += 1
        t["paid_orders"] += 1 if o.paid else 0
        t["paid_minor"] += o.paid_minor
        t["refunded_minor"] += o.refunded_minor
    report.totals["orders"] = {c: dict(v) for c, v in sorted(totals.items())}
