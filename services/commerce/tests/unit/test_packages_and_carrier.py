"""Packages (pure rules) and the sandbox carrier: fates by tracking number, shares, timeline."""

import asyncio
from datetime import UTC, datetime, timedelta

from shopstream.commerce.v1 import commissions_pb2, order_pb2
from shopstream_commerce.domain.orders import OrderState
from shopstream_commerce.domain.packages import (
    Disposition,
    PackageRecord,
    PackageState,
    fulfilment_fee,
    group_by_warehouse,
    is_late,
    order_state_for,
)
from shopstream_commerce.domain.settlements import EntryKind
from shopstream_commerce.fulfilment.carrier import SandboxCarrier, SandboxTerms, Tracking

P = PackageState
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def package(state: PackageState) -> PackageRecord:
    return PackageRecord("p", "o", "s", "w", False, state)


def test_order_state_follows_its_packages() -> None:
    assert order_state_for([package(P.AWAITING_SHIPMENT)] * 2) is None
    assert order_state_for([package(P.SHIPPED), package(P.AWAITING_SHIPMENT)]) == (
        OrderState.PARTIALLY_SHIPPED
    )
    # One delivered while the other waits: still partially shipped, never delivered.
    assert order_state_for([package(P.DELIVERED), package(P.AWAITING_SHIPMENT)]) == (
        OrderState.PARTIALLY_SHIPPED
    )
    assert order_state_for([package(P.SHIPPED), package(P.SHIPPED)]) == OrderState.SHIPPED
    assert order_state_for([package(P.SHIPPED), package(P.IN_TRANSIT)]) == OrderState.IN_TRANSIT
    assert order_state_for([package(P.DELIVERED), package(P.IN_TRANSIT)]) == (OrderState.IN_TRANSIT)
    assert order_state_for([package(P.DELIVERED), package(P.LOST)]) == OrderState.IN_TRANSIT
    assert order_state_for([package(P.DELIVERED)] * 2) == OrderState.DELIVERED


def test_allocations_group_into_one_package_per_warehouse() -> None:
    groups = group_by_warehouse(
        [("l1", "a", "w1", 1, False), ("l2", "b", "w2", 2, True), ("l3", "c", "w1", 3, False)]
    )
    assert {w: (p, [ln.line_id for ln in lines]) for w, (p, lines) in groups.items()} == {
        "w1": (False, ["l1", "l3"]),
        "w2": (True, ["l2"]),
    }


def test_late_and_fees() -> None:
    hour = timedelta(hours=1)
    assert not is_late(T0, T0, T0 + hour, T0 + hour)
    assert is_late(T0, T0 + hour, None, None)  # shipped after ship-by
    assert is_late(None, T0, T0 + hour, T0 + 2 * hour)  # delivered after deliver-by
    assert fulfilment_fee(3, 100, 50) == 250


def test_enum_mirrors_match_the_protos() -> None:
    for state in PackageState:
        assert order_pb2.PackageState.Value(f"PACKAGE_STATE_{state.name}") == state
    for disposition in Disposition:
        assert order_pb2.ReturnDisposition.Value(f"RETURN_DISPOSITION_{disposition.name}") == (
            disposition
        )
    for state in OrderState:
        assert order_pb2.OrderState.Value(f"ORDER_STATE_{state.name}") == state
    for kind in EntryKind:
        assert commissions_pb2.SellerEntryKind.Value(f"SELLER_ENTRY_KIND_{kind.name}") == kind


def test_sandbox_carrier_tells_the_same_story_for_the_same_number() -> None:
    now = [T0]
    terms = SandboxTerms(pickup_s=60, transit_s=600, promise_s=900, late_by_s=300)
    carrier = SandboxCarrier(terms, lambda: now[0])
    label = asyncio.run(carrier.create_label("p1", "w1", "GB-LND"))
    assert label.carrier == "sandbox" and label.tracking_number.startswith("SBX")
    assert label.deliver_by == T0 + timedelta(seconds=900)
    assert asyncio.run(carrier.track(label.tracking_number)) == []
    now[0] = T0 + timedelta(seconds=61)
    [scan] = asyncio.run(carrier.track(label.tracking_number))
    assert scan.status == Tracking.IN_TRANSIT
    now[0] = T0 + timedelta(days=1)
    events = asyncio.run(carrier.track(label.tracking_number))
    # A restarted carrier (a new instance) tells the same story: the number carries it.
    again = SandboxCarrier(terms, lambda: now[0])
    assert asyncio.run(again.track(label.tracking_number)) == events
    assert events[-1].status in (Tracking.DELIVERED, Tracking.LOST)
    assert asyncio.run(carrier.track("not-ours")) == []


def test_sandbox_carrier_shares_of_lost_and_late_parcels() -> None:
    carrier = SandboxCarrier(SandboxTerms(lost_share=0.1, late_share=0.2), lambda: T0)
    fates = [carrier.fate(f"SBX{1_700_000_000_000 + i}ABCDEF0123") for i in range(5_000)]
    lost = fates.count(Tracking.LOST) / len(fates)
    late = fates.count(Tracking.DELIVERED) / len(fates)
    assert 0.08 < lost < 0.12 and 0.18 < late < 0.22
    never = SandboxCarrier(SandboxTerms(lost_share=0, late_share=0), lambda: T0)
    assert all(never.fate(f"SBX{i}ABCDEF0123") is None for i in range(1_000))


def test_refunded_units_leave_their_package_and_a_cancelled_package_is_not_waited_for() -> None:
    from shopstream_commerce.domain.packages import PackageLine, shrink

    lines = [PackageLine("l1", "a", 2), PackageLine("l2", "b", 1)]
    assert shrink(lines, {"l1": 1}) == [PackageLine("l1", "a", 1), PackageLine("l2", "b", 1)]
    assert shrink(lines, {"l1": 2, "l2": 1}) == []
    assert order_state_for([package(P.SHIPPED), package(P.CANCELLED)]) == OrderState.SHIPPED
    assert order_state_for([package(P.CANCELLED)]) is None
