"""Fulfilled by the platform, set up through catalog's API (issue 20): the run's fulfilment
centres (RegisterWarehouse as the platform), and for each platform-fulfilled seller its SKUs
enrolled and its stock sent in — AnnounceInbound by the seller, ReceiveInbound by the platform,
a few lines counted short as real inbound shipments are. Only received units are sellable, so a
sold-out SKU of such a seller is restocked by another inbound shipment, not by AdjustStock."""

from __future__ import annotations

from collections import defaultdict

import grpc
from grpc import aio

from shopstream.catalog.v1 import catalog_pb2
from shopstream.catalog.v1 import catalog_service_pb2 as cat
from shopstream_simulator.clients import ADMIN, details_of
from shopstream_simulator.context import Context, Listing
from shopstream_simulator.ids import sub_rng
from shopstream_simulator.world import FulfilmentCentre, ProductSpec

# Share of inbound lines that arrive short, and by how much (at least one unit).
SHORT_SHARE = 0.2
SHORT_BY = (0.01, 0.05)
RESTOCK_UNITS = 500


async def register_centres(ctx: Context) -> None:
    for centre in ctx.world.fulfilment_centres:
        await _register(ctx, centre)


async def _register(ctx: Context, centre: FulfilmentCentre) -> None:
    try:
        await ctx.rpc(
            ctx.services.catalog.RegisterWarehouse,
            cat.RegisterWarehouseRequest(
                warehouse_id=centre.warehouse_id,
                display_name=centre.display_name,
                region=centre.region,
                platform=True,
            ),
            as_=ADMIN,
            expected=frozenset({grpc.StatusCode.ALREADY_EXISTS}),
        )
    except aio.AioRpcError as exc:
        # A retry of a registration that went through: the centre is there, which is the point.
        if exc.code() is not grpc.StatusCode.ALREADY_EXISTS:
            raise
    ctx.ledger.fulfilment["centres"] += 1


def counted(seed: int, sku_code: str, region: str, announced: int) -> int:
    """What the centre (of `region`) counts in of an announced line: all of it, or (SHORT_SHARE
    of lines) a few percent less. Drawn per line from the seed, not the run id, so every run of
    a seed finds the same shortfalls."""
    rng = sub_rng(seed, "inbound", sku_code, region)
    if rng.random() >= SHORT_SHARE:
        return announced
    return announced - max(1, round(announced * rng.uniform(*SHORT_BY)))


async def send_stock_in(ctx: Context, seller_id: str, products: list[ProductSpec]) -> None:
    """Enrol the seller's SKUs in the centres their stock goes to; one inbound shipment per
    centre, counted in by the platform."""
    as_seller = ("seller", seller_id)
    per_centre: dict[str, list[tuple[str, str, int]]] = defaultdict(list)
    for product in products:
        listing = ctx.listings.get(product.key)
        if listing is None:
            continue
        for sku_id, sku in zip(listing.sku_ids, product.skus, strict=True):
            for warehouse_id, units in sku.stock.items():
                await ctx.rpc(
                    ctx.services.catalog.EnrolSku,
                    cat.EnrolSkuRequest(sku_id=sku_id, warehouse_id=warehouse_id),
                    as_=as_seller,
                )
                ctx.ledger.fulfilment["skus_enrolled"] += 1
                per_centre[warehouse_id].append((sku_id, sku.code, units))
    regions = {c.warehouse_id: c.region for c in ctx.world.fulfilment_centres}
    for warehouse_id, lines in sorted(per_centre.items()):
        received = {
            sku_id: counted(ctx.world.seed, code, regions[warehouse_id], units)
            for sku_id, code, units in lines
        }
        await ship_in(
            ctx,
            seller_id,
            warehouse_id,
            {sku_id: units for sku_id, _, units in lines},
            received,
            key=f"{ctx.run_id}:inbound:{seller_id}:{warehouse_id}",
        )


async def ship_in(
    ctx: Context,
    seller_id: str,
    warehouse_id: str,
    announced: dict[str, int],
    received: dict[str, int],
    *,
    key: str,
) -> catalog_pb2.InboundShipment:
    """Announce (the seller), then count in (the platform); the ledger takes the numbers from
    catalog's answer, discrepancies included."""
    shipment = (
        await ctx.rpc(
            ctx.services.catalog.AnnounceInbound,
            cat.AnnounceInboundRequest(
                seller_id=seller_id,
                warehouse_id=warehouse_id,
                lines=[cat.InboundLineRequest(sku_id=s, quantity=q) for s, q in announced.items()],
                idempotency_key=key,
            ),
            as_=("seller", seller_id),
        )
    ).shipment
    try:
        shipment = (
            await ctx.rpc(
                ctx.services.catalog.ReceiveInbound,
                cat.ReceiveInboundRequest(
                    inbound_id=shipment.inbound_id,
                    received=[
                        cat.InboundLineRequest(sku_id=s, quantity=q) for s, q in received.items()
                    ],
                ),
                as_=ADMIN,
                idempotent=False,
            )
        ).shipment
    except aio.AioRpcError as exc:
        # A receipt whose answer was lost, or a retried run's: read what was counted.
        if exc.code() is not grpc.StatusCode.FAILED_PRECONDITION:
            raise
        shipment = (
            await ctx.rpc(
                ctx.services.catalog.GetInbound,
                cat.GetInboundRequest(inbound_id=shipment.inbound_id),
                as_=ADMIN,
            )
        ).shipment
        if shipment.state != catalog_pb2.INBOUND_STATE_RECEIVED:
            raise RuntimeError(
                f"inbound {shipment.inbound_id} not received: {details_of(exc)}"
            ) from exc
    f = ctx.ledger.fulfilment
    f["inbound_shipments"] += 1
    for line in shipment.lines:
        f["inbound_announced_units"] += line.announced
        f["inbound_received_units"] += line.received
        f["inbound_missing_units"] += max(0, -line.discrepancy)
        f["inbound_lines_short"] += 1 if line.discrepancy < 0 else 0
    ctx.fulfilment_inbound.append(shipment.inbound_id)
    return shipment


async def restock(ctx: Context, listing: Listing, sku_id: str) -> None:
    """A sold-out platform SKU: the seller sends more into the centre it first sat in."""
    product = ctx.world.product(listing.key)
    try:
        sku = product.skus[listing.sku_ids.index(sku_id)]
    except ValueError:
        return
    warehouse_id = next(iter(sku.stock))
    n = ctx.ledger.fulfilment["restock_shipments"] + 1
    await ship_in(
        ctx,
        listing.seller_id,
        warehouse_id,
        {sku_id: RESTOCK_UNITS},
        {sku_id: RESTOCK_UNITS},
        key=f"{ctx.run_id}:restock:{sku_id}:{n}",
    )
    ctx.ledger.fulfilment["restock_shipments"] += 1
