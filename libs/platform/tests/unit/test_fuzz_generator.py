"""The fuzz generator makes the hostile requests it promises, reproducibly."""

import random

from google.protobuf.message import DecodeError

from shopstream.ads.v1 import ads_service_pb2
from shopstream.commerce.v1 import commerce_service_pb2
from shopstream_platform.fuzz import HostileMessages, hostile_bodies


def test_bodies_are_reproducible_and_of_every_kind() -> None:
    descriptor = commerce_service_pb2.PlaceOrderRequest.DESCRIPTOR
    first = list(hostile_bodies(descriptor, random.Random(3), 300))
    assert first == list(hostile_bodies(descriptor, random.Random(3), 300))
    assert len(first) == 300
    assert b"" in first
    undecodable = 0
    for body in first:
        try:
            commerce_service_pb2.PlaceOrderRequest.FromString(body)
        except (DecodeError, ValueError):
            undecodable += 1
    # Invalid UTF-8, truncated and random bodies: at least the UTF-8 fifth never decodes.
    assert 60 <= undecodable < 300


def test_messages_carry_edge_values_and_unknown_enums() -> None:
    messages = HostileMessages(random.Random(1))
    bid_types = set()
    budgets = set()
    seconds = set()
    for _ in range(300):
        request = messages.message(ads_service_pb2.CreateCampaignRequest.DESCRIPTOR)
        bid_types.add(request.bid_type)
        budgets.add(request.daily_budget.amount_minor)
        seconds.add(request.starts_at.seconds)
    assert {999, -1} & bid_types, bid_types  # values the enum does not define
    assert {2**63 - 1, -(2**63)} <= budgets
    assert 2**62 in seconds and 253_402_300_800 in seconds


def test_a_mutated_seed_keeps_the_rest_of_the_request() -> None:
    from shopstream_platform.fuzz import mutate

    seed = commerce_service_pb2.PlaceOrderRequest(buyer_id="b1", idempotency_key="k1")
    seed.lines.add(sku_id="sku-1", quantity=1)
    rng = random.Random(5)
    changed = 0
    for _ in range(200):
        mutated = mutate(seed, rng)
        kept = sum(
            (
                mutated.buyer_id == "b1",
                mutated.idempotency_key == "k1",
                list(mutated.lines) == list(seed.lines),
            )
        )
        assert kept >= 2, mutated  # one field (or one line's field) changed at a time
        changed += mutated != seed
    assert changed > 100
    assert seed.buyer_id == "b1" and len(seed.lines) == 1  # the seed itself is untouched
