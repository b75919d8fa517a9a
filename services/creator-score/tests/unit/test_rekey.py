"""Re-keying orders, live sessions and ad attributions into per-creator records."""

from __future__ import annotations

import pytest

from shopstream.ads.v1 import ads_events_pb2
from shopstream.commerce.v1 import live_pb2, order_events_pb2, order_pb2
from shopstream.common.v1 import money_pb2
from shopstream_creator_score.stream import rekey
from shopstream_platform.kafka.events import InvalidEventError


def order_with_lines(*lines: tuple[str, str, str, int]) -> order_pb2.Order:
    order = order_pb2.Order(order_id="o-1")
    order.total.CopyFrom(money_pb2.Money(amount_minor=sum(x[3] for x in lines), currency="EUR"))
    order.updated_at.seconds = 1_700_000_000
    for line_id, creator, category, amount in lines:
        order.lines.add(
            line_id=line_id,
            category_id=category,
            line_total=money_pb2.Money(amount_minor=amount, currency="EUR"),
            attribution=order_pb2.AttributionContext(creator_id=creator),
        )
    return order


def test_a_paid_order_gives_each_creator_their_lines_by_category() -> None:
    order = order_with_lines(
        ("l1", "c-b", "beauty", 1_000),
        ("l2", "c-a", "beauty", 500),
        ("l3", "c-a", "home", 200),
        ("l4", "", "home", 9_999),  # organic line: no creator
    )
    sales = rekey.sales(order_events_pb2.OrderPaid(order=order), "evt-1")
    assert [(s.creator_id, s.amount.amount_minor, dict(s.by_category)) for s in sales] == [
        ("c-a", 700, {"beauty": 500, "home": 200}),
        ("c-b", 1_000, {"beauty": 1_000}),
    ]
    assert {s.sale_id for s in sales} == {"evt-1:c-a", "evt-1:c-b"}
    assert all(s.at.seconds == 1_700_000_000 and not s.refund for s in sales)


def test_a_refund_is_negative_and_only_for_the_refunded_lines() -> None:
    order = order_with_lines(("l1", "c-a", "beauty", 1_000), ("l2", "c-b", "beauty", 500))
    refund = order_events_pb2.OrderRefunded(order=order)
    refund.lines.add(line_id="l1", amount=money_pb2.Money(amount_minor=400, currency="EUR"))
    [sale] = rekey.sales(refund, "evt-2")
    assert (sale.creator_id, sale.amount.amount_minor, sale.refund) == ("c-a", -400, True)
    assert dict(sale.by_category) == {"beauty": -400}


def test_other_order_events_are_refused() -> None:
    with pytest.raises(TypeError):
        rekey.sales(order_events_pb2.OrderPlaced(), "evt")


def test_live_sessions_start_and_end_for_their_creator() -> None:
    session = live_pb2.LiveSession(live_session_id="ls-1", creator_id="c-a")
    session.started_at.seconds = 100
    [started] = rekey.live_session(live_pb2.LiveSessionStarted(session=session))
    assert (started.creator_id, started.ended, started.at.seconds) == ("c-a", False, 100)
    session.ended_at.seconds = 200
    session.stats.peak_viewers = 42
    [ended] = rekey.live_session(live_pb2.LiveSessionEnded(session=session))
    assert (ended.ended, ended.peak_viewers, ended.at.seconds, ended.started_at.seconds) == (
        True,
        42,
        200,
        100,
    )
    assert rekey.live_session(live_pb2.ProductPinned(live_session_id="ls-1")) == []
    with pytest.raises(InvalidEventError):
        rekey.live_session(live_pb2.LiveSessionStarted(session=live_pb2.LiveSession()))


def test_an_attribution_splits_exactly_among_its_creators() -> None:
    attribution = ads_events_pb2.Attribution(
        attribution_id="o-1:click-1:withdrawn",
        order_id="o-1",
        campaign_id="camp",
        creator_ids=["c-b", "c-a", "c-c", "c-a"],
        amount=money_pb2.Money(amount_minor=-1_001, currency="EUR"),
        withdrawn=True,
    )
    credits = rekey.ad_credits(attribution)
    assert [(c.creator_id, c.amount.amount_minor) for c in credits] == [
        ("c-a", -334),
        ("c-b", -334),
        ("c-c", -333),
    ]
    assert all(c.withdrawn and c.credit_id.endswith(c.creator_id) for c in credits)
    assert rekey.ad_credits(ads_events_pb2.Attribution(attribution_id="x")) == []
