"""Packages (pure): one per warehouse an order's stock was reserved in, their states, and the
order state they add up to.

PAID ─ship one of several─▶ PARTIALLY_SHIPPED ─ship the last─▶ SHIPPED ─carrier scan─▶ IN_TRANSIT
─every package delivered─▶ DELIVERED. A lost package keeps its order IN_TRANSIT (the buyer asks
for a refund through after-sales); it never counts as delivered.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from shopstream_commerce.domain.orders import OrderState

SELLER_CARRIER = "seller"


class PackageState(enum.IntEnum):
    """Numbers equal shopstream.commerce.v1.PackageState."""

    AWAITING_SHIPMENT = 1
    SHIPPED = 2
    IN_TRANSIT = 3
    DELIVERED = 4
    LOST = 5
    CANCELLED = 6


P = PackageState
ON_ITS_WAY = frozenset({P.SHIPPED, P.IN_TRANSIT})
LEFT_WAREHOUSE = frozenset({P.SHIPPED, P.IN_TRANSIT, P.DELIVERED, P.LOST})


class Disposition(enum.IntEnum):
    """Numbers equal shopstream.commerce.v1.ReturnDisposition."""

    UNSPECIFIED = 0
    RESTOCK = 1
    WRITE_OFF = 2


@dataclass(frozen=True)
class PackageLine:
    line_id: str
    sku_id: str
    quantity: int


@dataclass(frozen=True)
class PackageRecord:
    package_id: str
    order_id: str
    seller_id: str
    warehouse_id: str
    fulfilled_by_platform: bool
    state: PackageState
    lines: list[PackageLine] = field(default_factory=list)
    carrier: str = ""
    tracking_number: str = ""
    label: str = ""
    ship_by: datetime | None = None
    shipped_at: datetime | None = None
    deliver_by: datetime | None = None
    delivered_at: datetime | None = None
    lost_at: datetime | None = None
    late: bool = False
    created_at: datetime | None = None

    @property
    def units(self) -> int:
        return sum(line.quantity for line in self.lines)


def group_by_warehouse(
    reserved: Iterable[tuple[str, str, str, int, bool]],
) -> dict[str, tuple[bool, list[PackageLine]]]:
    """(line id, SKU, warehouse, quantity, by platform) allocations → per warehouse its lines."""
    packages: dict[str, tuple[bool, list[PackageLine]]] = {}
    for line_id, sku_id, warehouse_id, quantity, platform in reserved:
        _, lines = packages.setdefault(warehouse_id, (platform, []))
        lines.append(PackageLine(line_id, sku_id, quantity))
    return packages


def order_state_for(packages: Sequence[PackageRecord]) -> OrderState | None:
    """The shipping state the packages add up to (cancelled ones do not count); None when none
    has left its warehouse."""
    packages = [p for p in packages if p.state != P.CANCELLED]
    left = [p for p in packages if p.state in LEFT_WAREHOUSE]
    if not left:
        return None
    if len(left) < len(packages):
        return OrderState.PARTIALLY_SHIPPED
    if all(p.state == P.DELIVERED for p in packages):
        return OrderState.DELIVERED
    if any(p.state != P.SHIPPED for p in packages):
        return OrderState.IN_TRANSIT
    return OrderState.SHIPPED


# The order action that reaches each shipping state (domain/orders.py TRANSITIONS).
ACTION_FOR = {
    OrderState.PARTIALLY_SHIPPED: "ship_partly",
    OrderState.SHIPPED: "ship",
    OrderState.IN_TRANSIT: "in_transit",
    OrderState.DELIVERED: "deliver",
}


def shrink(lines: list[PackageLine], released: dict[str, int]) -> list[PackageLine]:
    """The package's lines once `released` units (per line id) will not ship; lines with nothing
    left drop out."""
    kept = []
    for line in lines:
        left = line.quantity - released.get(line.line_id, 0)
        if left > 0:
            kept.append(PackageLine(line.line_id, line.sku_id, left))
    return kept


def is_late(
    ship_by: datetime | None,
    shipped_at: datetime | None,
    deliver_by: datetime | None,
    delivered_at: datetime | None,
) -> bool:
    """Shipped after ship-by, or delivered after deliver-by."""
    shipped_late = ship_by is not None and shipped_at is not None and shipped_at > ship_by
    delivered_late = (
        deliver_by is not None and delivered_at is not None and delivered_at > deliver_by
    )
    return shipped_late or delivered_late


def fulfilment_fee(units: int, per_package_minor: int, per_unit_minor: int) -> int:
    """The platform's fee for picking, packing and shipping one package it fulfilled."""
    return per_package_minor + per_unit_minor * units
