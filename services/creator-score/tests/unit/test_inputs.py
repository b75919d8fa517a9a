"""The combiner's reducer: inputs checked, re-keyed and gathered per table partition."""

import pytest
from google.protobuf.message import DecodeError

from shopstream.commerce.v1 import order_events_pb2, order_pb2
from shopstream.creators.v1 import creators_pb2
from shopstream.social.v1 import creators_pb2 as social
from shopstream_creator_score.stream.inputs import CreatorInputs
from shopstream_creator_score.stream.topics import CONTENT_TOPIC, ORDERS_TOPIC, PROFILES_TOPIC
from shopstream_platform.combiner import SourceEvent, partition_for
from shopstream_platform.kafka.codec import type_name
from shopstream_platform.kafka.events import InvalidEventError

PROFILE = type_name(social.CreatorProfile)
CONTENT = type_name(social.ContentStats)
PAID = type_name(order_events_pb2.OrderPaid)
T = "2026-12-06T10:00:00.000000Z"


def batches(reducer: CreatorInputs) -> dict[int, list[creators_pb2.CreatorInput]]:
    out: dict[int, list[creators_pb2.CreatorInput]] = {}
    for partition, value in reducer.take():
        out.setdefault(partition, []).extend(
            creators_pb2.CreatorInputBatch.FromString(value).inputs
        )
    return out


def profile(creator: str, followers: int = 10, at: bool = True) -> bytes:
    p = social.CreatorProfile(creator_id=creator, display_name=creator, followers=followers)
    if at:
        p.at.FromSeconds(1_800_000_000)
    return p.SerializeToString()


def test_inputs_go_to_the_creators_partition_in_order() -> None:
    r = CreatorInputs(6, 900_000)
    for i, creator in enumerate(["a", "b", "a"]):
        assert r.add(
            PROFILES_TOPIC, creator.encode(), profile(creator, i), SourceEvent(f"e{i}", PROFILE, T)
        )
    assert r.pending == 3
    got = batches(r)
    assert r.pending == 0 and r.take() == []
    a = got[partition_for("a", 6)]
    assert [(x.creator_id, x.event_id, x.profile.followers) for x in a if x.creator_id == "a"] == [
        ("a", "e0", 0),
        ("a", "e2", 2),
    ]
    assert [x.event_id for x in got[partition_for("b", 6)] if x.creator_id == "b"] == ["e1"]


def test_the_event_time_is_kept_only_when_the_input_has_none() -> None:
    r = CreatorInputs(6, 900_000)
    r.add(PROFILES_TOPIC, b"a", profile("a", at=False), SourceEvent("e1", PROFILE, T))
    r.add(PROFILES_TOPIC, b"b", profile("b"), SourceEvent("e2", PROFILE, T))
    items = {x.creator_id: x for xs in batches(r).values() for x in xs}
    assert items["a"].HasField("event_time") and not items["b"].HasField("event_time")


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        (b"a", b"\xff\xff\xff", DecodeError),
        (b"other", profile("a"), InvalidEventError),  # key is not the creator
        (None, profile("a"), InvalidEventError),
        (b"a", profile("a", followers=-1), InvalidEventError),
    ],
)
def test_poison_raises_and_leaves_nothing_behind(
    key: bytes | None, value: bytes, error: type[Exception]
) -> None:
    r = CreatorInputs(6, 900_000)
    r.add(PROFILES_TOPIC, b"ok", profile("ok"), SourceEvent("e0", PROFILE, T))
    with pytest.raises(error):
        r.add(PROFILES_TOPIC, key, value, SourceEvent("e1", PROFILE, T))
    assert r.pending == 1
    assert [x.creator_id for xs in batches(r).values() for x in xs] == ["ok"]


def test_content_without_an_id_is_poison() -> None:
    r = CreatorInputs(6, 900_000)
    stats = social.ContentStats(creator_id="a", views=3)
    with pytest.raises(InvalidEventError):
        r.add(CONTENT_TOPIC, b"a", stats.SerializeToString(), SourceEvent("e", CONTENT, T))


def test_an_order_is_split_per_creator_with_ids_per_source_event_and_creator() -> None:
    order = order_pb2.Order(order_id="o1")
    order.total.currency = "USD"
    for line_id, creator in (("1", "a"), ("2", "b")):
        line = order.lines.add(line_id=line_id, category_id="beauty")
        line.line_total.amount_minor = 1_000
        line.attribution.creator_id = creator
    value = order_events_pb2.OrderPaid(order=order).SerializeToString()
    r = CreatorInputs(6, 900_000)
    assert r.add(ORDERS_TOPIC, b"o1", value, SourceEvent("ev", PAID, T))
    items = sorted((x for xs in batches(r).values() for x in xs), key=lambda x: x.creator_id)
    assert [(x.creator_id, x.event_id, x.sale.amount.amount_minor) for x in items] == [
        ("a", "ev:a", 1_000),
        ("b", "ev:b", 1_000),
    ]


def test_types_the_worker_does_not_use_are_skipped() -> None:
    r = CreatorInputs(6, 900_000)
    placed = type_name(order_events_pb2.OrderPlaced)
    assert not r.add(ORDERS_TOPIC, b"o1", b"", SourceEvent("e", placed, T))
    assert r.pending == 0


def test_a_window_past_the_record_size_limit_is_split() -> None:
    r = CreatorInputs(1, 2_000)
    for i in range(200):
        r.add(PROFILES_TOPIC, b"a", profile("a", i), SourceEvent(f"e{i}", PROFILE, T))
    records = r.take()
    assert len(records) > 1 and all(len(v) <= 2_000 for _, v in records)
    followers = [
        x.profile.followers
        for _, v in records
        for x in creators_pb2.CreatorInputBatch.FromString(v).inputs
    ]
    assert followers == list(range(200))
