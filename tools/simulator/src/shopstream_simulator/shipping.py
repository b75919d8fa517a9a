"""A paid order's way to the buyer through packages (issue 20), by the seller's way of shipping
(world.Fulfilment):

- own carrier: `ShipOrder` with the seller's tracking number; the buyer confirms delivery
  (journeys.py, as before packages existed);
- the platform's carrier: the seller ships each waiting package with `ShipPackage` and no
  tracking number, so the sandbox carrier labels it and commerce tracks it to DELIVERED (on time
  or late) or LOST; a split order's second package follows a moment later (PARTIALLY_SHIPPED
  meanwhile);
- fulfilled by the platform: commerce picks, packs and ships from the centre (booking the fee on
  the seller's ledger); nobody but the platform acts.

The buyer follows the order (`GetOrder`, which carries its packages) until every package arrived
or one was lost. A lost parcel is refunded at the buyer's request; goods of the platform's
centres come back as a return the platform receives and inspects (restock or write-off).
Every count here is of an answer the services gave.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
from grpc import aio

from shopstream.commerce.v1 import commerce_service_pb2 as cpb
from shopstream.commerce.v1 import order_pb2
from shopstream_simulator.clients import ADMIN, AMBIGUOUS, Principal, details_of
from shopstream_simulator.context import Context
from shopstream_simulator.ids import sub_rng
from shopstream_simulator.plan import OrderIntent

P = order_pb2.PackageState
S = order_pb2.OrderState
# How often a waiting buyer looks at the order, and how long the second package of a split
# order waits on the seller's bench.
TRACK_EVERY_S = 1.5
NEXT_PACKAGE_S = (1.0, 3.0)
# How long past the ship-by the late shipper ships (clear of clock and rounding differences).
PAST_SHIP_BY_S = 1.5
# Share of returns into a centre that fail inspection (opened, damaged) and are written off.
WRITE_OFF_SHARE = 0.2
# Order states after which nothing more will ship or arrive.
CLOSED = frozenset({S.ORDER_STATE_REFUNDED, S.ORDER_STATE_CANCELLED, S.ORDER_STATE_COMPLETED})


@dataclass(frozen=True)
class Tracked:
    """The order and its packages as the buyer last saw them."""

    order: order_pb2.Order
    packages: tuple[order_pb2.Package, ...]

    @property
    def live(self) -> list[order_pb2.Package]:
        """The packages that ship (a package refunded before shipping is cancelled)."""
        return [p for p in self.packages if p.state != P.PACKAGE_STATE_CANCELLED]

    @property
    def lost(self) -> list[order_pb2.Package]:
        return [p for p in self.packages if p.state == P.PACKAGE_STATE_LOST]

    @property
    def delivered(self) -> bool:
        return self.order.state == S.ORDER_STATE_DELIVERED

    @property
    def settled(self) -> bool:
        """Nothing more will happen to the parcels: each arrived or was lost."""
        if self.order.state in CLOSED or self.delivered:
            return True
        live = self.live
        return bool(live) and all(
            p.state in (P.PACKAGE_STATE_DELIVERED, P.PACKAGE_STATE_LOST) for p in live
        )


async def read(ctx: Context, order_id: str, as_: Principal) -> Tracked:
    answer = await ctx.rpc(
        ctx.services.commerce.GetOrder, cpb.GetOrderRequest(order_id=order_id), as_=as_
    )
    return Tracked(answer.order, tuple(answer.packages))


async def ship_with_labels(ctx: Context, order_id: str, seller_id: str, index: int) -> bool:
    """The seller hands each waiting package to the platform's carrier; False when a step was
    given up or the run is stopping."""
    as_seller = ("seller", seller_id)
    tracked = await read(ctx, order_id, as_seller)
    waiting = [
        p
        for p in tracked.packages
        if p.state == P.PACKAGE_STATE_AWAITING_SHIPMENT and not p.fulfilled_by_platform
    ]
    rng = sub_rng(ctx.world.seed, "next-package", index)
    for n, package in enumerate(waiting):
        if n and not await ctx.pause(rng.uniform(*NEXT_PACKAGE_S)):
            return False
        state = await _ship_package(ctx, order_id, package.package_id, as_seller)
        if state is None:
            return False
        ctx.ledger.fulfilment["shipped_sandbox"] += 1
        if state == S.ORDER_STATE_PARTIALLY_SHIPPED:
            ctx.ledger.fulfilment["orders_partially_shipped"] += 1
    return True


async def _ship_package(
    ctx: Context, order_id: str, package_id: str, as_seller: Principal
) -> int | None:
    """ShipPackage is not idempotent: when its answer is lost, read the package back and retry
    only if it still waits. The order's state after it (UNSPECIFIED when read back), or None
    when given up."""
    for _ in range(3):
        try:
            answer = await ctx.rpc(
                ctx.services.commerce.ShipPackage,
                cpb.ShipPackageRequest(package_id=package_id),
                as_=as_seller,
                idempotent=False,
            )
            return int(answer.order.state)
        except aio.AioRpcError as exc:
            lost = exc.code() in AMBIGUOUS or exc.code() is grpc.StatusCode.ABORTED
            if not lost and exc.code() is not grpc.StatusCode.FAILED_PRECONDITION:
                raise
            failure = exc
        try:
            tracked = await read(ctx, order_id, ADMIN)
        except aio.AioRpcError:
            continue
        current = next((p for p in tracked.packages if p.package_id == package_id), None)
        if current is not None and current.state != P.PACKAGE_STATE_AWAITING_SHIPMENT:
            return int(S.ORDER_STATE_UNSPECIFIED)
        if not lost:
            raise failure
    ctx.ledger.orders["steps_given_up"] += 1
    return None


async def wait_past_ship_by(ctx: Context, paid: order_pb2.Order) -> bool:
    """The late shipper lets the order's ship-by pass before shipping (then its parcel is late
    and so is its shipment). Ship-by is the payment (the paid order's `updated_at`) plus
    commerce's `ship_within_s` (the config's copy: no API shows it before the package ships).
    Further off than `late_ship_wait_s` (commerce's default is two days; `make run` sets 20 s)
    it ships now, counted as `late_shipments_not_waited`. False when the run is stopping."""
    ship_by = paid.updated_at.ToDatetime(tzinfo=UTC) + timedelta(seconds=ctx.config.ship_within_s)
    wait = (ship_by - datetime.now(UTC)).total_seconds() + PAST_SHIP_BY_S
    if wait > ctx.config.late_ship_wait_s:
        ctx.ledger.fulfilment["late_shipments_not_waited"] += 1
        ctx.ledger.warn(
            f"the late shipper's ship-by is {wait:.0f} s away, more than late_ship_wait_s: "
            "shipped on time (make run shortens SHOPSTREAM_COMMERCE_SHIP_WITHIN_S)"
        )
        return True
    if not await ctx.pause(wait):
        return False
    ctx.ledger.fulfilment["shipped_late_on_purpose"] += 1
    return True


async def follow(ctx: Context, order_id: str, as_buyer: Principal) -> Tracked | None:
    """Look at the order every TRACK_EVERY_S until its parcels arrived or one was lost (or
    `delivery_wait_s` passed: counted as still on the way); None when the run is stopping."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ctx.config.delivery_wait_s
    while True:
        tracked = await read(ctx, order_id, as_buyer)
        if tracked.settled:
            return tracked
        if loop.time() > deadline:
            ctx.ledger.fulfilment["orders_still_on_the_way"] += 1
            return tracked
        if not await ctx.pause(TRACK_EVERY_S):
            return None


async def record(ctx: Context, tracked: Tracked) -> None:
    """Count the order's packages by how they shipped and how they ended, and the fee the
    platform booked for the packages it fulfilled."""
    f = ctx.ledger.fulfilment
    live = tracked.live
    f["packages"] += len(live)
    if len(live) > 1:
        f["orders_split"] += 1
    by_platform = False
    for p in live:
        if p.state == P.PACKAGE_STATE_AWAITING_SHIPMENT:
            continue
        if p.fulfilled_by_platform:
            f["shipped_by_platform"] += 1
            by_platform = True
        elif p.carrier != "sandbox":
            f["shipped_own_carrier"] += 1
        if p.state == P.PACKAGE_STATE_DELIVERED:
            f["delivered_late" if p.late else "delivered_on_time"] += 1
        elif p.state == P.PACKAGE_STATE_LOST:
            f["lost"] += 1
    if by_platform:
        settlement = await ctx.rpc(
            ctx.services.commerce.GetOrderSettlement,
            cpb.GetOrderSettlementRequest(order_id=tracked.order.order_id),
            as_=ADMIN,
        )
        f["platform_fees_minor"] += abs(settlement.settlement.fulfilment_fee.amount_minor)


async def refund_lost(
    ctx: Context, tracked: Tracked, as_buyer: Principal, as_seller: Principal
) -> None:
    """The buyer asks for the lost parcels' units back; the seller approves."""
    lines = [
        cpb.RefundLineRequest(line_id=line.line_id, quantity=line.quantity)
        for package in tracked.lost
        for line in package.lines
    ]
    if not lines:
        return
    asked = await ctx.rpc(
        ctx.services.commerce.RequestRefund,
        cpb.RequestRefundRequest(
            order_id=tracked.order.order_id,
            lines=lines,
            reason="the carrier lost the parcel",
            type=cpb.AFTER_SALE_TYPE_REFUND,
        ),
        as_=as_buyer,
        idempotent=False,
    )
    ctx.ledger.orders["refunds_requested"] += 1
    if not await ctx.pause(1.0):
        return
    await _approve(ctx, asked.refund.refund_id, as_seller)
    ctx.ledger.refunded(asked.refund.amount.currency, asked.refund.amount.amount_minor)
    ctx.ledger.fulfilment["lost_refunded"] += 1


async def return_to_centre(
    ctx: Context,
    tracked: Tracked,
    intent: OrderIntent,
    index: int,
    as_buyer: Principal,
    as_seller: Principal,
) -> None:
    """Goods of the platform's centre come back: the buyer asks, the seller agrees, the buyer
    ships the return, and the platform receives and inspects it (RESTOCK puts the units back on
    sale in the centre, WRITE_OFF with a reason does not)."""
    order = tracked.order
    if intent.partial_refund:
        first = order.lines[0]
        lines = [cpb.RefundLineRequest(line_id=first.line_id, quantity=1)]
        units = 1
    else:
        lines = []
        units = sum(line.quantity - line.refunded_quantity for line in order.lines)
    asked = await ctx.rpc(
        ctx.services.commerce.RequestRefund,
        cpb.RequestRefundRequest(
            order_id=order.order_id,
            lines=lines,
            reason="not as described",
            type=cpb.AFTER_SALE_TYPE_RETURN_AND_REFUND,
        ),
        as_=as_buyer,
        idempotent=False,
    )
    ctx.ledger.orders["refunds_requested"] += 1
    refund = asked.refund
    if not await ctx.pause(1.0):
        return
    await _approve(ctx, refund.refund_id, as_seller)
    await ctx.rpc(
        ctx.services.commerce.ShipReturn,
        cpb.ShipReturnRequest(refund_id=refund.refund_id, tracking_number=f"RET-{order.order_id}"),
        as_=as_buyer,
        idempotent=False,
    )
    rng = sub_rng(ctx.world.seed, "inspection", index)
    if not await ctx.pause(rng.uniform(1.0, 3.0)):
        return
    write_off = rng.random() < WRITE_OFF_SHARE
    await ctx.rpc(
        ctx.services.commerce.ReceiveReturn,
        cpb.ReceiveReturnRequest(
            refund_id=refund.refund_id,
            disposition=order_pb2.RETURN_DISPOSITION_WRITE_OFF
            if write_off
            else order_pb2.RETURN_DISPOSITION_RESTOCK,
            disposition_reason="opened and damaged: not sellable" if write_off else "",
        ),
        as_=ADMIN,
        idempotent=False,
    )
    ctx.ledger.refunded(refund.amount.currency, refund.amount.amount_minor)
    f = ctx.ledger.fulfilment
    f["returns_written_off" if write_off else "returns_restocked"] += 1
    f["returned_units_written_off" if write_off else "returned_units_restocked"] += units


# What a retried approval answers when its first attempt went through: a refund is APPROVED, a
# return waits for the buyer's parcel.
APPROVED_BEFORE = ("already approved", "in state AWAITING_BUYER_SHIPMENT")


async def _approve(ctx: Context, refund_id: str, as_seller: Principal) -> None:
    try:
        await ctx.rpc(
            ctx.services.commerce.ApproveRefund,
            cpb.ApproveRefundRequest(refund_id=refund_id),
            as_=as_seller,
        )
    except aio.AioRpcError as exc:
        if not any(text in details_of(exc) for text in APPROVED_BEFORE):
            raise
