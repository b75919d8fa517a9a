"""Fulfilment: an order's packages, shipping them through a carrier, tracking, and returns
received into a warehouse.

Catalog's StockReserved creates one package per warehouse (platform warehouses marked
fulfilled by the platform). The seller ships their packages (ShipPackage / ShipOrder); the
platform ships its own from the sweep once the order is paid, booking its fulfilment fee on the
seller's ledger. The sweep polls the carrier for tracking events; each package change goes to
commerce.fulfilment.v1 and moves the order as the packages add up (domain/packages.py):
PARTIALLY_SHIPPED, SHIPPED, IN_TRANSIT, DELIVERED only when every package is. A returned
package received and inspected publishes ReturnInspected; catalog restocks RESTOCK units once.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream.catalog.v1 import events_pb2 as catalog_events
from shopstream.commerce.v1 import order_events_pb2 as ev
from shopstream.commerce.v1 import order_pb2
from shopstream_commerce import convert
from shopstream_commerce.access import ensure_can_see
from shopstream_commerce.domain import limits
from shopstream_commerce.domain import orders as saga
from shopstream_commerce.domain import packages as rules
from shopstream_commerce.domain.after_sales import AfterSaleType, RequestState
from shopstream_commerce.domain.ledgers import page_size
from shopstream_commerce.domain.limits import bounded
from shopstream_commerce.domain.orders import OrderState
from shopstream_commerce.domain.packages import (
    SELLER_CARRIER,
    Disposition,
    PackageRecord,
    PackageState,
)
from shopstream_commerce.domain.records import OrderRecord, RefundRecord
from shopstream_commerce.fulfilment.carrier import Carrier, Tracking
from shopstream_commerce.store import packages as store
from shopstream_commerce.store import repository as repo
from shopstream_commerce.usecases.context import Deps
from shopstream_commerce.usecases.settlements import SellerLedger
from shopstream_commerce.usecases.transitions import OrderTransitions
from shopstream_platform.errors import (
    ConflictError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from shopstream_platform.grpc.auth import Principal, ensure_acts_for
from shopstream_platform.ids import new_id
from shopstream_platform.paging import decode_cursor, encode_cursor

log = logging.getLogger(__name__)

FULFILMENT_TOPIC = "commerce.fulfilment.v1"
# Packages handled per sweep step (the rest wait for the next run).
SWEEP_BATCH = 200


class Fulfilment:
    def __init__(
        self,
        deps: Deps,
        transitions: OrderTransitions,
        carrier: Carrier,
        seller_ledger: SellerLedger,
    ) -> None:
        self.deps = deps
        self.transitions = transitions
        self.carrier = carrier
        self.seller_ledger = seller_ledger

    # --- packages from the reservation ----------------------------------------------------

    async def on_reserved(
        self, session: AsyncSession, order: OrderRecord, reserved: catalog_events.StockReserved
    ) -> None:
        """One package per warehouse of the reservation (once: a replay finds them)."""
        if await store.of_order(session, order.order_id):
            return
        groups = rules.group_by_warehouse(
            (
                line.line_id,
                line.sku_id,
                line.warehouse_id,
                line.quantity,
                line.fulfilled_by_platform,
            )
            for line in reserved.lines
        )
        now = self.deps.now()
        for warehouse_id, (platform, lines) in sorted(groups.items()):
            package = PackageRecord(
                package_id=new_id("pkg"),
                order_id=order.order_id,
                seller_id=order.seller_id,
                warehouse_id=warehouse_id,
                fulfilled_by_platform=platform,
                state=PackageState.AWAITING_SHIPMENT,
                lines=lines,
                created_at=now,
            )
            await store.insert(session, package)
            await self._publish(session, package, ev.PackageCreated)

    async def _publish(
        self, session: AsyncSession, package: PackageRecord, kind: type[Message]
    ) -> None:
        await self.deps.outbox.add(
            session, FULFILMENT_TOPIC, package.order_id, kind(package=convert.package_pb(package))
        )
        self.deps.metrics.packages.labels(package.state.name).inc()

    async def on_stock_released(
        self, session: AsyncSession, released: catalog_events.StockReleased
    ) -> None:
        """A partial release (units refunded before shipping): the waiting packages lose those
        units; one left with none is CANCELLED (`PackageCancelled`) and the order no longer
        waits for it. A whole release means the order never ships: nothing to do."""
        if not released.partial:
            return
        per_warehouse: dict[str, dict[str, int]] = {}
        for line in released.lines:
            held = per_warehouse.setdefault(line.warehouse_id, {})
            held[line.line_id] = held.get(line.line_id, 0) + line.quantity
        changed = False
        for package in await store.of_order(session, released.order_id):
            units = per_warehouse.get(package.warehouse_id)
            if not units or package.state != PackageState.AWAITING_SHIPMENT:
                continue
            kept = rules.shrink(package.lines, units)
            await store.replace_lines(session, package.package_id, kept)
            if not kept:
                cancelled = replace(package, state=PackageState.CANCELLED, lines=[])
                if await store.move(session, package, cancelled):
                    await self._publish(session, cancelled, ev.PackageCancelled)
                    changed = True
        if changed:
            order = await self.transitions.find(session, released.order_id)
            if order is not None:
                await self._follow_packages(session, order)

    # --- shipping -------------------------------------------------------------------------

    async def ship_package(
        self, principal: Principal, package_id: str, tracking: str
    ) -> tuple[PackageRecord, OrderRecord]:
        """The seller ships one of their packages: their own tracking number, or a label from
        the platform's carrier when none is given."""
        if not package_id:
            raise InvalidArgumentError("package_id", "is required")
        bounded("package_id", package_id, limits.ID)
        bounded("tracking_number", tracking, limits.TRACKING)
        async with self.deps.db.read() as session:
            package = await store.get(session, package_id)
        if package is None:
            raise NotFoundError("package", package_id)
        ensure_acts_for(principal, "seller", package.seller_id)
        if package.fulfilled_by_platform and not principal.is_admin:
            raise FailedPreconditionError(
                f"package {package_id} is fulfilled by the platform: the platform ships it"
            )
        return await self._ship(package, tracking)

    async def ship_order(
        self, principal: Principal, order: OrderRecord, tracking: str
    ) -> OrderRecord:
        """ShipOrder: every waiting package of the seller's with their tracking number."""
        async with self.deps.db.read() as session:
            waiting = [
                p
                for p in await store.of_order(session, order.order_id)
                if p.state == PackageState.AWAITING_SHIPMENT and not p.fulfilled_by_platform
            ]
        if not waiting:
            raise FailedPreconditionError(
                f"order {order.order_id} has no package of the seller's waiting to ship"
            )
        for package in waiting:
            _, order = await self._ship(package, tracking)
        return order

    async def _ship(
        self, package: PackageRecord, tracking: str
    ) -> tuple[PackageRecord, OrderRecord]:
        async with self.deps.db.read() as session:
            order = await self.transitions.load(session, package.order_id)
        self._may_ship(order, package)
        if tracking:
            carrier, label, deliver_by = SELLER_CARRIER, "", None
        else:
            # Outside any transaction, like a payment provider call; an unused label is harmless.
            made = await self.carrier.create_label(
                package.package_id, package.warehouse_id, order.ship_to_region
            )
            carrier, tracking, label = made.carrier, made.tracking_number, made.label
            deliver_by = made.deliver_by
        async with self.deps.db.transaction() as session:
            order = await self.transitions.load(session, package.order_id)
            await self.no_open_cancellation(session, order.order_id)
            self._may_ship(order, package)
            now = self.deps.now()
            if deliver_by is None:
                deliver_by = now + timedelta(seconds=self.deps.settings.delivery_promise_s)
            shipped = replace(
                package,
                state=PackageState.SHIPPED,
                carrier=carrier,
                tracking_number=tracking,
                label=label,
                ship_by=order.ship_by,
                shipped_at=now,
                deliver_by=deliver_by,
                late=rules.is_late(order.ship_by, now, None, None),
            )
            if not await store.move(session, package, shipped):
                raise ConflictError(f"package {package.package_id} changed concurrently; retry")
            await self._publish(session, shipped, ev.PackageShipped)
            if shipped.fulfilled_by_platform:
                await self._book_fee(session, order, shipped)
            order = await self._follow_packages(session, order)
        return shipped, order

    def _may_ship(self, order: OrderRecord, package: PackageRecord) -> None:
        if package.state != PackageState.AWAITING_SHIPMENT:
            raise FailedPreconditionError(
                f"package {package.package_id} is {package.state.name}, not AWAITING_SHIPMENT"
            )
        if not saga.can("ship", order.state):
            raise FailedPreconditionError(
                f"cannot ship order {order.order_id} in state {order.state.name} "
                "(needs PAID, PARTIALLY_REFUNDED or PARTIALLY_SHIPPED)"
            )

    async def no_open_cancellation(self, session: AsyncSession, order_id: str) -> None:
        """A buyer's cancellation request waits for the seller's answer before anything ships."""
        for refund_id, kind, state in await repo.open_requests(session, order_id):
            if kind == AfterSaleType.CANCEL and state == RequestState.REQUESTED:
                raise FailedPreconditionError(
                    f"order {order_id} has an open cancellation request {refund_id}: "
                    "approve or reject it first"
                )

    async def _book_fee(
        self, session: AsyncSession, order: OrderRecord, package: PackageRecord
    ) -> None:
        s = self.deps.settings
        fee = rules.fulfilment_fee(
            package.units, s.fbt_fee_per_package_minor, s.fbt_fee_per_unit_minor
        )
        if fee:
            await self.seller_ledger.on_fulfilled(session, order, package.package_id, fee)

    async def _follow_packages(self, session: AsyncSession, order: OrderRecord) -> OrderRecord:
        """Move the order to the state its packages add up to, if the saga allows it. The last
        package shipping always passes SHIPPED (OrderShipped: catalog commits the stock), even
        when an earlier package is already on its way or delivered."""
        packages = await store.of_order(session, order.order_id)
        target = rules.order_state_for(packages)
        if target is None or target == order.state:
            return order
        steps = [target]
        if target in (OrderState.IN_TRANSIT, OrderState.DELIVERED) and saga.can(
            "ship", order.state
        ):
            steps = [OrderState.SHIPPED, target]
        for step in steps:
            order = await self._step(session, order, step, packages)
        return order

    async def _step(
        self,
        session: AsyncSession,
        order: OrderRecord,
        target: OrderState,
        packages: list[PackageRecord],
    ) -> OrderRecord:
        action = rules.ACTION_FOR[target]
        if not saga.can(action, order.state):
            return order
        now = self.deps.now()
        shipped = [p for p in packages if p.shipped_at is not None]
        tracking = shipped[-1].tracking_number if shipped else order.tracking_number

        def event(o: OrderRecord) -> Message:
            pb = convert.order_pb(o)
            if target == OrderState.PARTIALLY_SHIPPED:
                return ev.OrderPartiallyShipped(order=pb, shipped_at=convert.timestamp(now))
            if target == OrderState.SHIPPED:
                return ev.OrderShipped(
                    order=pb,
                    tracking_number=tracking,
                    shipped_at=convert.timestamp(now),
                    ship_by=convert.timestamp(o.ship_by or now),
                )
            if target == OrderState.IN_TRANSIT:
                return ev.OrderInTransit(order=pb)
            return ev.OrderDelivered(order=pb, delivered_at=convert.timestamp(now))

        changes: dict[str, Any] = {}
        if target in (OrderState.PARTIALLY_SHIPPED, OrderState.SHIPPED):
            changes["tracking_number"] = tracking
            if order.shipped_at is None:
                changes["shipped_at"] = now
        if target == OrderState.DELIVERED:
            changes["delivered_at"] = now
        return await self.transitions.apply(session, order, action, event, **changes)

    async def ship_platform_due(self) -> int:
        """The platform picks, packs and ships its packages of paid orders."""
        async with self.deps.db.read() as session:
            due = await store.platform_due(session, SWEEP_BATCH)
        shipped = 0
        for package_id in due:
            async with self.deps.db.read() as session:
                package = await store.get(session, package_id)
            if package is None or package.state != PackageState.AWAITING_SHIPMENT:
                continue
            try:
                await self._ship(package, "")
            except (FailedPreconditionError, ConflictError) as exc:
                log.info(
                    "platform package not shipped",
                    extra={"package_id": package_id, "why": str(exc)},
                )
                continue
            shipped += 1
        return shipped

    # --- tracking and delivery ------------------------------------------------------------

    async def track_due(self) -> int:
        """Ask the carrier about the packages on their way it was asked about least recently
        (up to SWEEP_BATCH per run); apply what is new."""
        async with self.deps.db.read() as session:
            moving = await store.tracked(session, self.carrier.name, SWEEP_BATCH)
        moved = 0
        for package in moving:
            events = await self.carrier.track(package.tracking_number)
            latest = events[-1] if events else None
            if latest is None:
                continue
            if latest.status == Tracking.IN_TRANSIT and package.state == PackageState.IN_TRANSIT:
                continue
            async with self.deps.db.transaction() as session:
                current = await store.get(session, package.package_id)
                if current is None or current.state != package.state:
                    continue
                await self._apply_tracking(session, current, latest.status, latest.at)
            moved += 1
        if moving:
            async with self.deps.db.transaction() as session:
                await store.mark_tracked(session, [p.package_id for p in moving], self.deps.now())
        return moved

    async def _apply_tracking(
        self, session: AsyncSession, package: PackageRecord, status: Tracking, at: datetime
    ) -> None:
        if status == Tracking.IN_TRANSIT:
            after = replace(package, state=PackageState.IN_TRANSIT)
            kind: type[Message] = ev.PackageInTransit
        elif status == Tracking.DELIVERED:
            after = self._delivered(package, at)
            kind = ev.PackageDelivered
        else:
            after = replace(package, state=PackageState.LOST, lost_at=at)
            kind = ev.PackageLost
        if not await store.move(session, package, after):
            return
        await self._publish(session, after, kind)
        self._count_outcome(after)
        order = await self.transitions.load(session, package.order_id)
        await self._follow_packages(session, order)

    def _delivered(self, package: PackageRecord, at: datetime) -> PackageRecord:
        return replace(
            package,
            state=PackageState.DELIVERED,
            delivered_at=at,
            late=rules.is_late(package.ship_by, package.shipped_at, package.deliver_by, at),
        )

    def _count_outcome(self, package: PackageRecord) -> None:
        if package.state == PackageState.DELIVERED:
            outcome = "late" if package.late else "on_time"
        elif package.state == PackageState.LOST:
            outcome = "lost"
        else:
            return
        self.deps.metrics.deliveries.labels(package.warehouse_id, outcome).inc()

    async def confirm_delivery(self, session: AsyncSession, order: OrderRecord) -> OrderRecord:
        """The buyer confirms receipt: every package on its way is delivered now."""
        if not saga.can("deliver", order.state):
            saga.transition("deliver", order.state, order.order_id)
        packages = await store.of_order(session, order.order_id)
        if not packages:
            return order  # an order shipped before packages existed: the caller moves it
        now = self.deps.now()
        for package in packages:
            if package.state in rules.ON_ITS_WAY:
                after = self._delivered(package, now)
                if await store.move(session, package, after):
                    await self._publish(session, after, ev.PackageDelivered)
                    self._count_outcome(after)
        return await self._follow_packages(session, order)

    # --- reading --------------------------------------------------------------------------

    async def of_order(self, session: AsyncSession, order_id: str) -> list[PackageRecord]:
        return await store.of_order(session, order_id)

    async def list(
        self, principal: Principal, order_id: str, seller_id: str, size: int, token: str
    ) -> tuple[list[PackageRecord], str]:
        bounded("order_id", order_id, limits.ID)
        bounded("seller_id", seller_id, limits.ID)
        if bool(order_id) == bool(seller_id):
            raise InvalidArgumentError("order_id", "give exactly one of order_id or seller_id")
        settings = self.deps.settings
        size = page_size(size, settings.list_default_page_size, settings.list_max_page_size)
        after = decode_cursor(token)
        async with self.deps.db.read() as session:
            if order_id:
                ensure_can_see(principal, await self.transitions.load(session, order_id))
            else:
                ensure_acts_for(principal, "seller", seller_id)
            found = await store.page(
                session, order_id=order_id, seller_id=seller_id, after=after, limit=size + 1
            )
        next_token = encode_cursor(found[size - 1].package_id) if len(found) > size else ""
        return found[:size], next_token

    # --- returns into the warehouse -------------------------------------------------------

    def check_inspection(self, disposition: Disposition, reason: str) -> None:
        bounded("disposition_reason", reason, limits.REASON)
        if disposition == Disposition.WRITE_OFF and not reason.strip():
            raise InvalidArgumentError("disposition_reason", "is required for a write-off")

    async def on_return_received(
        self,
        session: AsyncSession,
        principal: Principal,
        order: OrderRecord,
        refund: RefundRecord,
        disposition: Disposition,
        reason: str,
    ) -> None:
        """In ReceiveReturn's transaction: a platform-fulfilled return is the platform's to
        receive and inspect; an inspected return publishes ReturnInspected (once per request:
        the request moves to APPROVED once)."""
        packages = await store.of_order(session, order.order_id)
        home = {line.line_id: p for p in packages for line in p.lines}
        by_platform = any(
            home[line_id].fulfilled_by_platform for line_id in refund.lines if line_id in home
        )
        if by_platform and not principal.is_admin:
            raise PermissionDeniedError(
                f"refund {refund.refund_id}: the items go back to a platform warehouse; "
                "the platform receives them"
            )
        if by_platform and disposition == Disposition.UNSPECIFIED:
            raise InvalidArgumentError(
                "disposition", "the platform inspects what it receives: RESTOCK or WRITE_OFF"
            )
        if disposition == Disposition.UNSPECIFIED:
            return
        lines = {line.line_id: line for line in order.lines}
        # One event per warehouse the returned lines shipped from.
        per_warehouse: dict[str, list[ev.InspectedLine]] = {}
        for line_id, quantity in sorted(refund.lines.items()):
            package = home.get(line_id)
            if package is None:
                continue
            per_warehouse.setdefault(package.warehouse_id, []).append(
                ev.InspectedLine(
                    line_id=line_id,
                    sku_id=lines[line_id].sku_id,
                    product_id=lines[line_id].product_id,
                    quantity=quantity,
                )
            )
        now = self.deps.now()
        for warehouse_id, inspected in sorted(per_warehouse.items()):
            platform = any(
                p.fulfilled_by_platform for p in packages if p.warehouse_id == warehouse_id
            )
            await self.deps.outbox.add(
                session,
                FULFILMENT_TOPIC,
                order.order_id,
                ev.ReturnInspected(
                    inspection_id=f"{refund.refund_id}/{warehouse_id}",
                    order_id=order.order_id,
                    refund_id=refund.refund_id,
                    seller_id=order.seller_id,
                    warehouse_id=warehouse_id,
                    fulfilled_by_platform=platform,
                    disposition=order_pb2.ReturnDisposition.ValueType(int(disposition)),
                    reason=reason.strip(),
                    lines=inspected,
                    inspected_at=convert.timestamp(now),
                ),
            )
            self.deps.metrics.returns_inspected.labels(disposition.name).inc(
                sum(line.quantity for line in inspected)
            )
