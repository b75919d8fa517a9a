"""The recount's arithmetic, from hand-made records (no broker, no services): what each domain
makes of a sequence of events, and how a service's different answer becomes exactly one
mismatch."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from google.protobuf.message import Message

from shopstream.ads.v1 import ads_events_pb2 as ads_ev
from shopstream.ads.v1 import ads_pb2
from shopstream.catalog.v1 import catalog_pb2
from shopstream.catalog.v1 import events_pb2 as cat
from shopstream.commerce.v1 import commerce_service_pb2 as pb
from shopstream.commerce.v1 import order_events_pb2 as ev
from shopstream.commerce.v1 import order_pb2
from shopstream.commerce.v1 import payment_events_pb2 as pay
from shopstream.common.v1.money_pb2 import Money
from shopstream_cli.reconcile import Report, Scope, ads, orders, stock
from shopstream_cli.reconcile.source import Record, Topics

GBP = "GBP"


def gbp(minor: int) -> Money:
    return Money(amount_minor=minor, currency=GBP)


def topics(*records: tuple[str, Message]) -> Topics:
    t = Topics()
    for i, (topic, message) in enumerate(records):
        t.records.setdefault(topic, []).append(
            Record(topic, "k", message.DESCRIPTOR.full_name, f"id-{i}", 0, message)
        )
    return t


def order(state: int, version: int, quantity: int = 2) -> order_pb2.Order:
    o = order_pb2.Order(
        order_id="o1", buyer_id="b1", state=state, version=version, total=gbp(quantity * 1_000)
    )
    line = o.lines.add(line_id="l1", sku_id="s1", product_id="p1", seller_id="sel-1")
    line.quantity = quantity
    line.line_total.CopyFrom(gbp(quantity * 1_000))
    line.attribution.creator_id = "cr-1"
    return o


def refunded(refund_id: str) -> ev.OrderRefunded:
    return ev.OrderRefunded(
        order=order(order_pb2.ORDER_STATE_PARTIALLY_REFUNDED, 4),
        refund_id=refund_id,
        amount=gbp(1_000),
        lines=[ev.RefundedLine(line_id="l1", seller_id="sel-1", quantity=1, amount=gbp(1_000))],
    )


def test_an_order_is_its_newest_snapshot_and_a_refund_counts_once_per_refund_id() -> None:
    book = orders.recount(
        topics(
            ("commerce.orders.v1", ev.OrderPlaced(order=order(order_pb2.ORDER_STATE_PLACED, 1))),
            ("commerce.orders.v1", ev.OrderPaid(order=order(order_pb2.ORDER_STATE_PAID, 3))),
            # Out of order on purpose: an older snapshot does not win.
            (
                "commerce.orders.v1",
                ev.OrderReserved(order=order(order_pb2.ORDER_STATE_RESERVED, 2)),
            ),
            ("commerce.orders.v1", refunded("rf-1")),
            ("commerce.orders.v1", refunded("rf-1")),  # the same refund under a second ce_id
            (
                "commerce.payments.v1",
                pay.PaymentAttempted(
                    order_id="o1", amount=gbp(2_000), status=pay.PAYMENT_STATUS_SUCCEEDED
                ),
            ),
            (
                "commerce.payments.v1",
                pay.PaymentAttempted(
                    order_id="o1", amount=gbp(2_000), status=pay.PAYMENT_STATUS_DECLINED
                ),
            ),
            ("commerce.payments.v1", pay.PaymentRefunded(order_id="o1", amount=gbp(1_000))),
        )
    )
    o = book.orders["o1"]
    assert (o.state, o.version) == (order_pb2.ORDER_STATE_PARTIALLY_REFUNDED, 4)
    assert (o.paid_minor, o.refunded_minor, dict(o.refunded_units)) == (2_000, 1_000, {"l1": 1})
    assert (o.charged_minor, o.provider_refunded_minor) == (2_000, 1_000)
    assert [x.order_id for x in book.in_scope(Scope(sellers=("sel-",)))] == ["o1"]
    assert book.in_scope(Scope(sellers=("other-",))) == []


class FakeServices:
    """Answers each request of a method from a table; records what was asked."""

    def __init__(self, answers: dict[str, list[Any]]) -> None:
        self.answers = answers
        self.commerce = SimpleNamespace(GetOrder="GetOrder", GetOrderSettlement="Settlement")
        self.catalog = SimpleNamespace(GetProduct="GetProduct")
        self.ads = SimpleNamespace(GetCampaignReport="Report")

    def calls(self, method: str, requests: list[Message], **_: Any) -> list[Any]:
        return self.answers[method][: len(requests)]


def test_a_state_the_service_disagrees_on_is_exactly_one_mismatch() -> None:
    book = orders.recount(
        topics(
            ("commerce.orders.v1", ev.OrderPlaced(order=order(order_pb2.ORDER_STATE_PLACED, 1))),
            (
                "commerce.orders.v1",
                ev.OrderCancelled(order=order(order_pb2.ORDER_STATE_CANCELLED, 2)),
            ),
        )
    )
    answer = pb.GetOrderResponse(order=order(order_pb2.ORDER_STATE_EXPIRED, 2))
    report = Report(scope="test")
    services = FakeServices({"GetOrder": [answer], "Settlement": []})
    orders.compare(book, Scope(), services, report)  # type: ignore[arg-type]
    assert [(m.check, m.subject, m.recounted, m.service) for m in report.mismatches] == [
        ("orders.state", "o1", "CANCELLED", "EXPIRED")
    ]
    assert report.exit_code == 1 and "1 MISMATCH " in report.verdict()


def product(stock_on_hand: int) -> catalog_pb2.Product:
    p = catalog_pb2.Product(product_id="p1", seller_id="sel-1")
    sku = p.skus.add(sku_id="s1")
    sku.stock.add(warehouse_id="w1", on_hand=stock_on_hand)
    return p


def test_stock_is_created_plus_adjustments_minus_commits_and_reserved_follows_the_orders() -> None:
    line = [cat.ReservedLine(sku_id="s1", warehouse_id="w1", quantity=2)]
    one = [cat.ReservedLine(sku_id="s1", warehouse_id="w1", quantity=1)]

    def changed(on_hand: int, reserved: int, cause: str) -> tuple[str, Message]:
        return (
            "catalog.products.v1",
            cat.StockChanged(
                product_id="p1",
                sku_id="s1",
                warehouse_id="w1",
                on_hand=on_hand,
                reserved=reserved,
                cause=cause,
            ),
        )

    counted = stock.recount(
        topics(
            ("catalog.products.v1", cat.ProductCreated(product=product(10))),
            changed(10, 2, "reserved"),
            changed(10, 4, "reserved"),
            changed(15, 4, "restock"),  # +5
            changed(15, 3, "released"),
            changed(13, 1, "committed"),
            ("catalog.stock.v1", cat.StockReserved(order_id="a", lines=line)),
            ("catalog.stock.v1", cat.StockReserved(order_id="b", lines=line)),
            ("catalog.stock.v1", cat.StockReleased(order_id="b", lines=one, partial=True)),
            ("catalog.stock.v1", cat.StockCommitted(order_id="a", lines=line)),
            # A product created before the window: not counted.
            (
                "catalog.stock.v1",
                cat.StockReserved(
                    order_id="c",
                    lines=[cat.ReservedLine(sku_id="old", warehouse_id="w1", quantity=1)],
                ),
            ),
        ),
        Scope(),
    )
    level = counted["p1"].levels[("s1", "w1")]
    assert (level.on_hand, level.reserved) == (13, 1)
    assert set(counted) == {"p1"}


def attribution(
    order_id: str, amount: int, *, refund: bool = False, withdrawn: bool = False
) -> tuple[str, Message]:
    a = ads_ev.Attribution(
        campaign_id="cmp-1",
        order_id=order_id,
        amount=gbp(amount),
        refund=refund,
        withdrawn=withdrawn,
    )
    a.ordered_at.FromDatetime(datetime(2026, 12, 6, 10, tzinfo=UTC))
    return ("ads.attributions.v1", a)


def test_a_campaign_day_counts_orders_with_positive_credits_and_their_net() -> None:
    campaign = ads_pb2.Campaign(campaign_id="cmp-1", advertiser_id="sel-1")
    counted = ads.recount(
        topics(
            ("ads.campaigns.v1", ads_ev.CampaignCreated(campaign=campaign)),
            attribution("o1", 5_000),
            attribution("o1", -1_000, refund=True),
            attribution("o2", 3_000),
            attribution("o2", -3_000, withdrawn=True),  # the credit moved elsewhere
        ),
        Scope(sellers=("sel-",)),
    )
    assert counted["cmp-1"].days() == {"2026-12-06": (1, 4_000)}
    assert ads.recount(topics(attribution("o1", 5_000)), Scope()) == {}


def test_the_verdict_and_exit_code_say_what_was_skipped() -> None:
    report = Report(scope="test")
    check = report.check("x", "y")
    check.compare("a", 1, 1)
    assert report.exit_code == 0 and report.verdict().startswith("reconcile: 0 mismatches in 1")
    report.check("z", "w").skip("commerce at 127.0.0.1:1: UNAVAILABLE")
    assert report.exit_code == 2 and "1 checks skipped" in report.verdict()
    assert Scope(creators=("s1-cr-",)).creator("s1-cr-0001")
    assert not Scope(creators=("s1-cr-",)).creator("s1-2-cr-0001")
    assert not Scope(since=datetime.now(UTC)).creators_complete
