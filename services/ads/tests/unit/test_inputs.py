"""The combiner's reducer for ads: inputs checked, keyed (clicks by install, the rest by buyer)
and gathered per table partition; orders re-keyed by buyer with what attribution needs."""

import pytest
from google.protobuf.message import DecodeError

from shopstream.ads.v1 import ads_events_pb2 as ev
from shopstream.ads.v1 import ads_pb2
from shopstream.commerce.v1 import order_events_pb2, order_pb2
from shopstream.common.v1 import money_pb2
from shopstream_ads.stream.inputs import AdsInputs
from shopstream_ads.topics import (
    CLICKS_TOPIC,
    IMPRESSIONS_TOPIC,
    ORDERS_TOPIC,
    SCREENED_TOPIC,
)
from shopstream_platform.combiner import SourceEvent, partition_for
from shopstream_platform.kafka.codec import type_name
from shopstream_platform.kafka.events import InvalidEventError

T = "2026-12-06T10:00:00.000000Z"


def event(message_type: type, ident: str, timestamp: float = 0.0) -> SourceEvent:
    return SourceEvent(ident, type_name(message_type), T, timestamp)


def batches(reducer: AdsInputs) -> dict[int, list[ev.AdsInput]]:
    out: dict[int, list[ev.AdsInput]] = {}
    for partition, value in reducer.take(0.0):
        out.setdefault(partition, []).extend(ev.AdsInputBatch.FromString(value).inputs)
    return out


def impression(ident: str, buyer: str = "b1") -> bytes:
    imp = ads_pb2.Impression(impression_id=ident, campaign_id="c1", buyer_id=buyer)
    imp.at.FromSeconds(1_800_000_000)
    return imp.SerializeToString()


def test_clicks_go_by_install_the_rest_by_buyer_in_order() -> None:
    r = AdsInputs(6, 900_000, "w")
    click = ads_pb2.Click(click_id="k1", campaign_id="c1", buyer_id="b1", install_id="phone-9")
    click.at.FromSeconds(1_800_000_000)
    assert r.add(IMPRESSIONS_TOPIC, b"b1", impression("i1"), event(ads_pb2.Impression, "e1"))
    assert r.add(CLICKS_TOPIC, b"phone-9", click.SerializeToString(), event(ads_pb2.Click, "e2"))
    assert r.add(IMPRESSIONS_TOPIC, b"b1", impression("i2"), event(ads_pb2.Impression, "e3"))
    screened = ev.ScreenedClick(click=click, worker="w")
    assert r.add(SCREENED_TOPIC, b"b1", screened.SerializeToString(), event(ev.ScreenedClick, "e4"))
    # Another deployment's screening of the same click is not gathered.
    foreign = ev.ScreenedClick(click=click, worker="other").SerializeToString()
    assert not r.add(SCREENED_TOPIC, b"b1", foreign, event(ev.ScreenedClick, "e5"))
    assert r.pending == 4
    got = batches(r)
    assert r.pending == 0
    by_buyer = [i for i in got[partition_for("b1", 6)] if i.key == "b1"]
    assert [(i.event_id, i.WhichOneof("input")) for i in by_buyer] == [
        ("e1", "impression"),
        ("e3", "impression"),
        ("e4", "screened"),
    ]
    (to_screen,) = [i for i in got[partition_for("phone-9", 6)] if i.key == "phone-9"]
    assert to_screen.click.click_id == "k1"


def test_an_order_is_rekeyed_by_buyer_with_its_click_ids_and_grace_start() -> None:
    r = AdsInputs(6, 900_000, "w", wall_clock=lambda: 1_900_000_000.0)
    order = order_pb2.Order(order_id="o1", buyer_id="b7", tracking_consent=True)
    order.total.CopyFrom(money_pb2.Money(amount_minor=2_500, currency="USD"))
    for click_id in ("k2", "k1", "k2"):
        order.lines.add(attribution=order_pb2.AttributionContext(ad_click_id=click_id))
    paid = order_events_pb2.OrderPaid(order=order)
    paid.paid_at.FromSeconds(1_800_000_000)
    assert r.add(
        ORDERS_TOPIC,
        b"o1",
        paid.SerializeToString(),
        event(order_events_pb2.OrderPaid, "e", timestamp=1_800_000_100.5),
    )
    (item,) = batches(r)[partition_for("b7", 6)]
    assert item.key == "b7"
    assert list(item.order.ad_click_ids) == ["k1", "k2"]
    assert item.order.amount.amount_minor == 2_500 and not item.order.refund
    assert item.order.at.seconds == 1_800_000_000
    # The grace starts at the record's Kafka timestamp, not when the combiner read it.
    assert item.order.observed_at.ToNanoseconds() == 1_800_000_100_500_000_000


def test_poison_raises_and_leaves_nothing_behind() -> None:
    r = AdsInputs(6, 900_000, "w")
    with pytest.raises(InvalidEventError, match="buyer_id"):
        r.add(IMPRESSIONS_TOPIC, b"", impression("i1", buyer=""), event(ads_pb2.Impression, "e"))
    no_time = ads_pb2.Click(click_id="k", campaign_id="c", buyer_id="b").SerializeToString()
    with pytest.raises(InvalidEventError, match="no time"):
        r.add(CLICKS_TOPIC, b"b", no_time, event(ads_pb2.Click, "e"))
    with pytest.raises(DecodeError):
        r.add(IMPRESSIONS_TOPIC, b"b", b"\xff\xff\xff", event(ads_pb2.Impression, "e"))
    assert r.pending == 0 and r.take(0.0) == []
    # A type the worker does not use is skipped, not poison.
    assert not r.add(ORDERS_TOPIC, b"o", b"", event(order_events_pb2.OrderPlaced, "e"))


def test_a_window_too_big_for_one_record_is_split() -> None:
    r = AdsInputs(1, 2_000, "w")
    for i in range(100):
        r.add(IMPRESSIONS_TOPIC, b"b1", impression(f"i{i}"), event(ads_pb2.Impression, f"e{i}"))
    records = r.take(0.0)
    assert len(records) > 1 and all(len(v) <= 2_000 for _, v in records)
    ids = [i.event_id for _, v in records for i in ev.AdsInputBatch.FromString(v).inputs]
    assert ids == [f"e{i}" for i in range(100)]


def test_every_batch_carries_the_watermark_and_idle_partitions_get_ticks() -> None:
    r = AdsInputs(3, 2_000, "w", tick_s=0.1, wall_clock=lambda: 5_000.0)
    r.add(IMPRESSIONS_TOPIC, b"b1", impression("i1"), event(ads_pb2.Impression, "e1"))
    first = {p: ev.AdsInputBatch.FromString(v) for p, v in r.take(1_000.0)}
    # The input's partition gets its batch, every other partition a tick: all at the watermark
    # (the worker's clock), with the wall clock beside it.
    assert sorted(first) == [0, 1, 2]
    assert {p: len(b.inputs) for p, b in first.items()} == {
        p: int(p == partition_for("b1", 3)) for p in range(3)
    }
    assert {b.watermark.ToNanoseconds() for b in first.values()} == {1_000 * 10**9}
    assert {b.closed_at.ToNanoseconds() for b in first.values()} == {5_000 * 10**9}
    assert r.take(1_000.05) == []  # within the tick: nothing to say
    assert sorted(p for p, _ in r.take(1_000.2)) == [0, 1, 2]
    # A split batch keeps its clock in both halves.
    for i in range(100):
        r.add(IMPRESSIONS_TOPIC, b"b1", impression(f"i{i}"), event(ads_pb2.Impression, f"x{i}"))
    halves = [
        ev.AdsInputBatch.FromString(v) for p, v in r.take(1_000.25) if p == partition_for("b1", 3)
    ]
    assert len(halves) > 1
    assert {h.watermark.ToNanoseconds() for h in halves} == {1_000_250_000_000}


def test_no_clock_and_no_ticks_while_the_watermark_is_unknown() -> None:
    r = AdsInputs(3, 2_000, "w", tick_s=0.1)
    r.add(IMPRESSIONS_TOPIC, b"b1", impression("i1"), event(ads_pb2.Impression, "e1"))
    (only,) = r.take(0.0)
    assert only[0] == partition_for("b1", 3)
    batch = ev.AdsInputBatch.FromString(only[1])
    assert not batch.HasField("watermark") and len(batch.inputs) == 1
