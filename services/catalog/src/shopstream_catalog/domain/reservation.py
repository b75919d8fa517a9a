"""Stock reservation planning: which warehouses serve each order line, or why none can.

The plan is computed from a snapshot; the store applies it with conditional updates
(`reserved + q` only where `on_hand - reserved >= q`), so a plan that lost a race fails to apply
and the whole order is rejected — never oversold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shopstream_catalog.domain.model import ListingStatus


@dataclass(frozen=True)
class RequestedLine:
    line_id: str
    sku_id: str
    quantity: int


@dataclass(frozen=True)
class SkuStock:
    product_status: ListingStatus
    # warehouse id → available (on-hand minus reserved)
    available: Mapping[str, int]


@dataclass(frozen=True)
class Allocation:
    line_id: str
    sku_id: str
    warehouse_id: str
    quantity: int


@dataclass(frozen=True)
class Rejection:
    sku_id: str
    # Name of shopstream.catalog.v1.RejectionReason without the prefix.
    reason: str
    message: str


def plan(lines: list[RequestedLine], stock: Mapping[str, SkuStock]) -> list[Allocation] | Rejection:
    if not lines:
        return Rejection("", "INVALID_ORDER", "order has no lines")
    # Several lines may name one SKU: budget against what earlier lines already took.
    remaining = {sku: dict(s.available) for sku, s in stock.items()}
    allocations: list[Allocation] = []
    for line in lines:
        if line.quantity <= 0:
            return Rejection(
                line.sku_id, "INVALID_ORDER", f"line {line.line_id}: quantity must be positive"
            )
        sku = stock.get(line.sku_id)
        if sku is None:
            return Rejection(line.sku_id, "UNKNOWN_SKU", f"SKU {line.sku_id} does not exist")
        if sku.product_status != ListingStatus.ACTIVE:
            return Rejection(
                line.sku_id,
                "NOT_ORDERABLE",
                f"product of SKU {line.sku_id} is {sku.product_status.name}",
            )
        needed = line.quantity
        # Fewest splits: draw from the fullest warehouse first.
        for warehouse, available in sorted(
            remaining[line.sku_id].items(), key=lambda kv: (-kv[1], kv[0])
        ):
            if needed == 0:
                break
            take = min(needed, available)
            if take <= 0:
                continue
            allocations.append(Allocation(line.line_id, line.sku_id, warehouse, take))
            remaining[line.sku_id][warehouse] -= take
            needed -= take
        if needed:
            have = line.quantity - needed
            return Rejection(
                line.sku_id,
                "OUT_OF_STOCK",
                f"SKU {line.sku_id}: {line.quantity} wanted, {have} available",
            )
    return allocations


def excess(held: list[Allocation], keep: Mapping[str, int]) -> list[Allocation]:
    """The units of `held` beyond `keep` (units per line still to ship), as allocations to
    release: a line refunded in part before shipping gives back what it will never ship, taken
    from its last allocations first. Lines missing from `keep` keep everything."""
    released: list[Allocation] = []
    for line_id in dict.fromkeys(a.line_id for a in held):
        if line_id not in keep:
            continue
        mine = [a for a in held if a.line_id == line_id]
        over = sum(a.quantity for a in mine) - max(keep[line_id], 0)
        for allocation in reversed(mine):
            if over <= 0:
                break
            units = min(over, allocation.quantity)
            released.append(
                Allocation(allocation.line_id, allocation.sku_id, allocation.warehouse_id, units)
            )
            over -= units
    return released
