"""The fulfilment network (pure): warehouses, inbound shipments and their discrepancies.

A platform warehouse's stock only ever grows by what it received (an inbound shipment counted
in, or a returned unit that passed inspection): nothing announced is sellable before it is
received, and neither AdjustStock nor CreateProduct may put units there.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from shopstream_catalog.domain import validation
from shopstream_platform.errors import InvalidArgumentError

MAX_REGION = 32
MAX_INBOUND_LINES = 100


class InboundState(enum.IntEnum):
    """Numbers equal shopstream.catalog.v1.InboundState."""

    ANNOUNCED = 1
    RECEIVED = 2


@dataclass(frozen=True)
class Warehouse:
    warehouse_id: str
    display_name: str
    region: str
    platform: bool
    seller_id: str


@dataclass(frozen=True)
class InboundLine:
    sku_id: str
    announced: int
    received: int = 0

    @property
    def discrepancy(self) -> int:
        return self.received - self.announced


@dataclass(frozen=True)
class InboundShipment:
    inbound_id: str
    seller_id: str
    warehouse_id: str
    state: InboundState
    lines: list[InboundLine] = field(default_factory=list)
    announced_at: datetime | None = None
    received_at: datetime | None = None

    @property
    def discrepancy(self) -> int:
        return sum(line.discrepancy for line in self.lines)


def validate_warehouse(warehouse_id: str, display_name: str, region: str) -> None:
    validation.require_id("warehouse_id", warehouse_id)
    validation.max_length("display_name", display_name, 200)
    validation.max_length("region", region, MAX_REGION)


def validate_quantities(field_name: str, quantities: list[tuple[str, int]], minimum: int) -> None:
    """At most 100 lines, each SKU once, each quantity minimum..10,000,000."""
    if len(quantities) > MAX_INBOUND_LINES:
        raise InvalidArgumentError(field_name, f"at most {MAX_INBOUND_LINES} lines")
    seen: set[str] = set()
    for i, (sku_id, quantity) in enumerate(quantities):
        validation.require_id(f"{field_name}[{i}].sku_id", sku_id)
        if sku_id in seen:
            raise InvalidArgumentError(f"{field_name}[{i}].sku_id", f"{sku_id!r} is listed twice")
        seen.add(sku_id)
        if not minimum <= quantity <= validation.MAX_STOCK:
            raise InvalidArgumentError(
                f"{field_name}[{i}].quantity", f"must be {minimum}..{validation.MAX_STOCK}"
            )


def received(shipment: InboundShipment, counted: dict[str, int]) -> InboundShipment:
    """The shipment as counted in: SKUs not counted received 0 (a discrepancy)."""
    unknown = set(counted) - {line.sku_id for line in shipment.lines}
    if unknown:
        raise InvalidArgumentError(
            "received.sku_id", f"{sorted(unknown)[0]!r} is not part of {shipment.inbound_id}"
        )
    return InboundShipment(
        inbound_id=shipment.inbound_id,
        seller_id=shipment.seller_id,
        warehouse_id=shipment.warehouse_id,
        state=InboundState.RECEIVED,
        lines=[
            InboundLine(line.sku_id, line.announced, counted.get(line.sku_id, 0))
            for line in shipment.lines
        ],
        announced_at=shipment.announced_at,
    )


def storage_fee(units: int, seconds: float, per_unit_day_minor: int) -> int:
    """The fee for `units` stored `seconds`, at `per_unit_day_minor` per unit and day, rounded
    down (what is left over is charged with the next period only if the units stay)."""
    return int(units * per_unit_day_minor * max(seconds, 0.0) // 86_400)
