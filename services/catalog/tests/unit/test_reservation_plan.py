from shopstream_catalog.domain.model import ListingStatus
from shopstream_catalog.domain.reservation import (
    Allocation,
    Rejection,
    RequestedLine,
    SkuStock,
    excess,
    plan,
)

ACTIVE = ListingStatus.ACTIVE


def test_line_is_split_across_warehouses_fullest_first() -> None:
    result = plan(
        [RequestedLine("l1", "s1", 5)],
        {"s1": SkuStock(ACTIVE, {"w1": 2, "w2": 4})},
    )
    assert result == [Allocation("l1", "s1", "w2", 4), Allocation("l1", "s1", "w1", 1)]


def test_lines_for_the_same_sku_share_its_stock() -> None:
    result = plan(
        [RequestedLine("l1", "s1", 2), RequestedLine("l2", "s1", 2)],
        {"s1": SkuStock(ACTIVE, {"w1": 3})},
    )
    assert isinstance(result, Rejection) and result.reason == "OUT_OF_STOCK"
    assert "2 wanted, 1 available" in result.message


def test_unknown_and_unorderable_skus_are_rejected() -> None:
    assert plan([RequestedLine("l1", "nope", 1)], {}) == Rejection(
        "nope", "UNKNOWN_SKU", "SKU nope does not exist"
    )
    suppressed = {"s1": SkuStock(ListingStatus.SUPPRESSED, {"w1": 9})}
    result = plan([RequestedLine("l1", "s1", 1)], suppressed)
    assert isinstance(result, Rejection) and result.reason == "NOT_ORDERABLE"


def test_invalid_quantities_and_empty_orders() -> None:
    assert isinstance(plan([], {}), Rejection)
    result = plan([RequestedLine("l1", "s1", 0)], {"s1": SkuStock(ACTIVE, {"w1": 1})})
    assert isinstance(result, Rejection) and result.reason == "INVALID_ORDER"


def test_excess_gives_back_the_refunded_units_from_the_last_allocations_first() -> None:
    held = [
        Allocation("l1", "s1", "w1", 2),
        Allocation("l1", "s1", "w2", 1),
        Allocation("l2", "s2", "w1", 4),
    ]
    # l1 keeps 1 of 3 (w2's unit goes first, then one of w1's); l2 keeps all; unknown lines keep all.
    assert excess(held, {"l1": 1, "l2": 4}) == [
        Allocation("l1", "s1", "w2", 1),
        Allocation("l1", "s1", "w1", 1),
    ]
    assert excess(held, {"l2": 0}) == [Allocation("l2", "s2", "w1", 4)]
    assert excess(held, {"l1": 3}) == []
