from shopstream_catalog.domain.model import ListingStatus
from shopstream_catalog.domain.reservation import (
    Allocation,
    Rejection,
    RequestedLine,
    Site,
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


SITES = {
    "lnd": Site(region="GB-LND", platform=False),
    "man": Site(region="GB-MAN", platform=False),
    "fbt": Site(region="GB-MAN", platform=True),
}


def test_one_warehouse_serves_the_whole_order_when_any_can() -> None:
    stock = {
        "a": SkuStock(ACTIVE, {"lnd": 5, "man": 5}),
        "b": SkuStock(ACTIVE, {"man": 5}),
    }
    lines = [RequestedLine("l1", "a", 1), RequestedLine("l2", "b", 1)]
    # London is the buyer's region, but only Manchester has both: no split.
    assert plan(lines, stock, "GB-LND", SITES) == [
        Allocation("l1", "a", "man", 1),
        Allocation("l2", "b", "man", 1),
    ]


def test_each_line_goes_to_the_buyers_region_first_then_the_platform() -> None:
    stock = {
        "a": SkuStock(ACTIVE, {"lnd": 1, "man": 9}),
        "b": SkuStock(ACTIVE, {"fbt": 1}),
    }
    lines = [RequestedLine("l1", "a", 1), RequestedLine("l2", "b", 1)]
    # No warehouse has both: a from London (the buyer's region), b from where it is.
    assert plan(lines, stock, "GB-LND", SITES) == [
        Allocation("l1", "a", "lnd", 1),
        Allocation("l2", "b", "fbt", 1),
    ]
    # Without a region: the fullest.
    assert plan(lines, stock, "", SITES)[0] == Allocation("l1", "a", "man", 1)  # type: ignore[index]
    # The platform's warehouse before the seller's own, though it has fewer units.
    both = {"b": SkuStock(ACTIVE, {"man": 5, "fbt": 1})}
    assert plan([RequestedLine("l1", "b", 1)], both, "", SITES) == [Allocation("l1", "b", "fbt", 1)]
    # ... unless the seller's is in the buyer's region.
    assert plan(
        [RequestedLine("l1", "b", 1)], both, "GB-LND", {**SITES, "man": Site("GB-LND")}
    ) == [Allocation("l1", "b", "man", 1)]


def test_a_line_is_split_only_when_no_warehouse_can_serve_it_alone() -> None:
    stock = {"a": SkuStock(ACTIVE, {"lnd": 2, "man": 3})}
    assert plan([RequestedLine("l1", "a", 3)], stock, "GB-LND", SITES) == [
        Allocation("l1", "a", "man", 3)
    ]
    assert plan([RequestedLine("l1", "a", 4)], stock, "GB-LND", SITES) == [
        Allocation("l1", "a", "man", 3),
        Allocation("l1", "a", "lnd", 1),
    ]
