"""Stock reservation planning: which warehouses serve each order line, or why none can.

Routing: one warehouse serves the whole order when any can (an order is split only when none
can); otherwise each line goes to one warehouse that can serve all of it, and only a line no
warehouse can serve alone is split, fullest first. Among warehouses that can, those of the
buyer's region come first, then the platform's (Fulfilled by the platform), then the one with
the most units, then by id.

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
class Site:
    """What routing knows of a warehouse: the region it serves and whether it is the platform's."""

    region: str = ""
    platform: bool = False


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


def _check(line: RequestedLine, stock: Mapping[str, SkuStock]) -> Rejection | None:
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
    return None


def plan(
    lines: list[RequestedLine],
    stock: Mapping[str, SkuStock],
    region: str = "",
    sites: Mapping[str, Site] | None = None,
) -> list[Allocation] | Rejection:
    if not lines:
        return Rejection("", "INVALID_ORDER", "order has no lines")
    for line in lines:
        rejection = _check(line, stock)
        if rejection is not None:
            return rejection
    sites = sites or {}

    def rank(warehouse: str, available: int) -> tuple[bool, bool, int, str]:
        site = sites.get(warehouse, Site())
        in_region = bool(region) and site.region == region
        return (not in_region, not site.platform, -available, warehouse)

    # Several lines may name one SKU: budget against what earlier lines already took.
    remaining = {sku: dict(s.available) for sku, s in stock.items()}
    needed: dict[str, int] = {}
    for line in lines:
        needed[line.sku_id] = needed.get(line.sku_id, 0) + line.quantity
    whole = [
        w
        for w in {w for sku in needed for w in remaining[sku]}
        if all(remaining[sku].get(w, 0) >= q for sku, q in needed.items())
    ]
    if whole:
        best = min(whole, key=lambda w: rank(w, sum(remaining[s].get(w, 0) for s in needed)))
        return [Allocation(line.line_id, line.sku_id, best, line.quantity) for line in lines]
    allocations: list[Allocation] = []
    for line in lines:
        here = remaining[line.sku_id]
        serving = [w for w, available in here.items() if available >= line.quantity]
        if serving:
            best = min(serving, key=lambda w: rank(w, here[w]))
            allocations.append(Allocation(line.line_id, line.sku_id, best, line.quantity))
            here[best] -= line.quantity
            continue
        still = line.quantity
        # No warehouse can serve the line alone: split, fullest first.
        for warehouse, available in sorted(here.items(), key=lambda kv: (-kv[1], kv[0])):
            if still == 0:
                break
            take = min(still, available)
            if take <= 0:
                continue
            allocations.append(Allocation(line.line_id, line.sku_id, warehouse, take))
            here[warehouse] -= take
            still -= take
        if still:
            have = line.quantity - still
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
