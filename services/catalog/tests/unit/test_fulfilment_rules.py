"""The fulfilment network's pure rules: inbound counts and discrepancies, bounds, storage fees."""

import pytest

from shopstream_catalog.domain.fulfilment import (
    InboundLine,
    InboundShipment,
    InboundState,
    received,
    storage_fee,
    validate_quantities,
)
from shopstream_platform.errors import InvalidArgumentError

ANNOUNCED = InboundShipment(
    "inb_1", "s1", "fbt", InboundState.ANNOUNCED, [InboundLine("a", 100), InboundLine("b", 5)]
)


def test_received_counts_give_each_line_its_discrepancy() -> None:
    done = received(ANNOUNCED, {"a": 95})
    assert done.state == InboundState.RECEIVED
    assert [(x.sku_id, x.announced, x.received, x.discrepancy) for x in done.lines] == [
        ("a", 100, 95, -5),
        ("b", 5, 0, -5),  # not counted: nothing arrived
    ]
    assert done.discrepancy == -10
    assert received(ANNOUNCED, {"a": 101, "b": 5}).discrepancy == 1
    with pytest.raises(InvalidArgumentError, match=r"received\.sku_id"):
        received(ANNOUNCED, {"c": 1})


def test_quantities_are_bounded_and_named() -> None:
    validate_quantities("lines", [("a", 1), ("b", 10_000_000)], minimum=1)
    for bad, field in (
        ([("a", 0)], r"lines\[0\]\.quantity"),
        ([("a", 10_000_001)], r"lines\[0\]\.quantity"),
        ([("a", 1), ("a", 2)], r"lines\[1\]\.sku_id"),
        ([(f"s{i}", 1) for i in range(101)], "lines"),
    ):
        with pytest.raises(InvalidArgumentError, match=field):
            validate_quantities("lines", bad, minimum=1)
    validate_quantities("received", [("a", 0)], minimum=0)


def test_storage_fee_is_per_unit_and_day_rounded_down() -> None:
    assert storage_fee(10, 86_400, 2) == 20
    assert storage_fee(10, 43_200, 2) == 10
    assert storage_fee(1, 1_000, 2) == 0
    assert storage_fee(10, -5, 2) == 0
