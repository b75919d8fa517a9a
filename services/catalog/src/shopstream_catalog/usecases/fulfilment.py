"""The fulfilment network: warehouses, SKUs enrolled in platform warehouses, inbound shipments
(announced, then received: only received units are on hand, so sellable), returned units
restocked after inspection, and packages' outcomes for the sellers' delivery quality.

Receiving adds the counted units in the same conditional `UPDATE` every stock change uses, in
one transaction with the shipment's move to RECEIVED (once: a second receive finds it
RECEIVED), so a concurrent order either sees the units or not, never half of a shipment's SKU.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from shopstream.catalog.v1 import events_pb2
from shopstream.commerce.v1 import order_events_pb2, order_pb2
from shopstream.common.v1 import money_pb2
from shopstream_catalog import convert
from shopstream_catalog.domain import fulfilment as rules
from shopstream_catalog.domain import validation
from shopstream_catalog.domain.fulfilment import (
    InboundLine,
    InboundShipment,
    InboundState,
    Warehouse,
)
from shopstream_catalog.store import fulfilment as store
from shopstream_catalog.store import repository as repo
from shopstream_catalog.usecases.catalog import CatalogApp
from shopstream_platform.errors import (
    AlreadyExistsError,
    ConflictError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
)
from shopstream_platform.grpc.auth import Principal, ensure_acts_for
from shopstream_platform.ids import new_id
from shopstream_platform.kafka.events import InvalidEventError
from shopstream_platform.paging import decode_cursor, encode_cursor, page_size

FULFILMENT_TOPIC = "catalog.fulfilment.v1"
MAX_PAGE = 100


def _now() -> datetime:
    return datetime.now(UTC)


class Fulfilment:
    def __init__(self, app: CatalogApp) -> None:
        self._app = app
        self.db = app.db
        self.outbox = app.outbox
        self.metrics = app.metrics

    # --- warehouses -----------------------------------------------------------------------

    async def register_warehouse(self, principal: Principal, w: Warehouse) -> Warehouse:
        rules.validate_warehouse(w.warehouse_id, w.display_name, w.region)
        if w.platform:
            if not principal.is_admin:
                raise PermissionDeniedError("only admins register platform warehouses")
            if w.seller_id:
                raise InvalidArgumentError("seller_id", "a platform warehouse has no seller")
        else:
            validation.require_id("seller_id", w.seller_id)
            ensure_acts_for(principal, "seller", w.seller_id)
        async with self.db.transaction() as session:
            if not w.platform and await repo.get_seller(session, w.seller_id) is None:
                raise NotFoundError("seller", w.seller_id)
            if not await store.insert_warehouse(session, w, _now()):
                raise AlreadyExistsError("warehouse", w.warehouse_id)
            await self.outbox.add(
                session,
                FULFILMENT_TOPIC,
                w.warehouse_id,
                events_pb2.WarehouseRegistered(warehouse=convert.warehouse_pb(w)),
            )
        return w

    async def list_warehouses(
        self, platform_only: bool, size: int, token: str
    ) -> tuple[list[Warehouse], str]:
        size = page_size(size, 20, MAX_PAGE)
        async with self.db.read() as session:
            found = await store.page_warehouses(
                session, platform_only, decode_cursor(token), size + 1
            )
        token = encode_cursor(found[size - 1].warehouse_id) if len(found) > size else ""
        return found[:size], token

    async def _platform_warehouse(self, session: AsyncSession, warehouse_id: str) -> Warehouse:
        validation.require_id("warehouse_id", warehouse_id)
        warehouse = await store.get_warehouse(session, warehouse_id)
        if warehouse is None:
            raise NotFoundError("warehouse", warehouse_id)
        if not warehouse.platform:
            raise FailedPreconditionError(f"{warehouse_id} is not a platform warehouse")
        return warehouse

    # --- enrolment ------------------------------------------------------------------------

    async def enrol_sku(self, principal: Principal, sku_id: str, warehouse_id: str) -> None:
        validation.require_id("sku_id", sku_id)
        async with self.db.transaction() as session:
            warehouse = await self._platform_warehouse(session, warehouse_id)
            product_id = await repo.sku_product(session, sku_id)
            if product_id is None:
                raise NotFoundError("sku", sku_id)
            product = (await repo.load_products(session, [product_id]))[product_id]
            ensure_acts_for(principal, "seller", product.seller_id)
            if await store.enrol(
                session, sku_id, warehouse.warehouse_id, product.seller_id, product_id, _now()
            ):
                await self.outbox.add(
                    session,
                    FULFILMENT_TOPIC,
                    warehouse.warehouse_id,
                    events_pb2.SkuEnrolled(
                        seller_id=product.seller_id,
                        sku_id=sku_id,
                        product_id=product_id,
                        warehouse_id=warehouse.warehouse_id,
                    ),
                )

    # --- inbound shipments ----------------------------------------------------------------

    async def announce_inbound(
        self,
        principal: Principal,
        seller_id: str,
        warehouse_id: str,
        lines: list[tuple[str, int]],
        key: str,
    ) -> InboundShipment:
        validation.require_id("seller_id", seller_id)
        ensure_acts_for(principal, "seller", seller_id)
        validation.max_length("idempotency_key", key, validation.MAX_IDEMPOTENCY_KEY)
        if not lines:
            raise InvalidArgumentError("lines", "at least one line is required")
        rules.validate_quantities("lines", lines, minimum=1)
        async with self.db.transaction() as session:
            if key:
                existing = await store.inbound_by_key(session, seller_id, key)
                if existing is not None:
                    return (await store.load_inbound(session, [existing]))[existing]
            warehouse = await self._platform_warehouse(session, warehouse_id)
            enrolled = await store.enrolled(session, warehouse_id, [sku for sku, _ in lines])
            for i, (sku_id, _) in enumerate(lines):
                if sku_id not in enrolled:
                    raise FailedPreconditionError(
                        f"lines[{i}]: SKU {sku_id} is not enrolled in {warehouse_id} (EnrolSku)"
                    )
            owners = {await repo.sku_product(session, sku) for sku, _ in lines}
            products = await repo.load_products(session, [p for p in owners if p])
            if any(p.seller_id != seller_id for p in products.values()):
                raise PermissionDeniedError(f"every SKU must be {seller_id}'s own")
            inbound_id = new_id("inb")
            shipment = InboundShipment(
                inbound_id=inbound_id,
                seller_id=seller_id,
                warehouse_id=warehouse.warehouse_id,
                state=InboundState.ANNOUNCED,
                lines=[InboundLine(sku, quantity) for sku, quantity in sorted(lines)],
                announced_at=_now(),
            )
            await store.insert_inbound(session, shipment, key or inbound_id)
            await self.outbox.add(
                session,
                FULFILMENT_TOPIC,
                warehouse_id,
                events_pb2.InboundAnnounced(shipment=convert.inbound_pb(shipment)),
            )
        self.metrics.inbound_units.labels("announced").inc(sum(q for _, q in lines))
        return shipment

    async def receive_inbound(
        self, principal: Principal, inbound_id: str, counted: list[tuple[str, int]]
    ) -> InboundShipment:
        if not principal.is_admin:
            raise PermissionDeniedError("the platform's warehouse counts shipments in")
        validation.require_id("inbound_id", inbound_id)
        rules.validate_quantities("received", counted, minimum=0)
        touched: set[str] = set()
        async with self.db.transaction() as session:
            shipment = (await store.load_inbound(session, [inbound_id])).get(inbound_id)
            if shipment is None:
                raise NotFoundError("inbound shipment", inbound_id)
            if shipment.state != InboundState.ANNOUNCED:
                raise FailedPreconditionError(f"inbound shipment {inbound_id} was received already")
            now = _now()
            done = rules.received(shipment, dict(counted))
            done = replace(done, received_at=now)
            if not await store.mark_received(session, done, now):
                raise ConflictError(f"inbound shipment {inbound_id} changed concurrently; retry")
            for line in done.lines:
                if line.received:
                    touched.add(
                        await self._on_hand(
                            session, line.sku_id, done.warehouse_id, line.received, "inbound"
                        )
                    )
            await self.outbox.add(
                session,
                FULFILMENT_TOPIC,
                done.warehouse_id,
                events_pb2.InboundReceived(
                    shipment=convert.inbound_pb(done), discrepancy=done.discrepancy
                ),
            )
        self._app.cache.invalidate(touched)
        self.metrics.inbound_units.labels("received").inc(sum(x.received for x in done.lines))
        self.metrics.inbound_units.labels("missing").inc(
            sum(max(-x.discrepancy, 0) for x in done.lines)
        )
        self.metrics.inbound_units.labels("extra").inc(
            sum(max(x.discrepancy, 0) for x in done.lines)
        )
        return done

    async def _on_hand(
        self, session: AsyncSession, sku_id: str, warehouse_id: str, units: int, cause: str
    ) -> str:
        """Add received units on hand (sellable from the commit on); returns the product id."""
        product_id = await repo.sku_product(session, sku_id)
        if product_id is None:
            raise NotFoundError("sku", sku_id)
        level = await repo.adjust_on_hand(
            session, sku_id, warehouse_id, units, max_on_hand=validation.MAX_STOCK
        )
        if level is None:
            raise FailedPreconditionError(
                f"on-hand of {sku_id} in {warehouse_id} would exceed {validation.MAX_STOCK}"
            )
        await repo.refresh_available(session, [product_id])
        await self._app.stock_event(session, product_id, sku_id, level, cause)
        return product_id

    async def get_inbound(self, principal: Principal, inbound_id: str) -> InboundShipment:
        validation.require_id("inbound_id", inbound_id)
        async with self.db.read() as session:
            shipment = (await store.load_inbound(session, [inbound_id])).get(inbound_id)
        if shipment is None:
            raise NotFoundError("inbound shipment", inbound_id)
        ensure_acts_for(principal, "seller", shipment.seller_id)
        return shipment

    async def list_inbound(
        self, principal: Principal, seller_id: str, size: int, token: str
    ) -> tuple[list[InboundShipment], str]:
        validation.require_id("seller_id", seller_id)
        ensure_acts_for(principal, "seller", seller_id)
        size = page_size(size, 20, MAX_PAGE)
        async with self.db.read() as session:
            ids = await store.page_inbound(session, seller_id, decode_cursor(token), size + 1)
            found = await store.load_inbound(session, ids[:size])
        token = encode_cursor(ids[size - 1]) if len(ids) > size else ""
        return [found[i] for i in ids[:size]], token

    # --- storage fees ---------------------------------------------------------------------

    async def charge_storage(self) -> int:
        """Each seller's units in each platform warehouse since their last charge (the first
        charge starts now): one StorageCharged per seller, warehouse and currency with a fee."""
        settings = self._app.settings
        now = _now()
        charged = 0
        async with self.db.transaction() as session:
            for seller_id, warehouse_id, currency, units in await store.stored_units(session):
                holder = (seller_id, warehouse_id, currency)
                since = await store.last_charged(session, *holder)
                amount = (
                    rules.storage_fee(
                        units,
                        (now - since).total_seconds(),
                        settings.storage_fee_per_unit_day_minor,
                    )
                    if since is not None
                    else 0
                )
                if since is not None and (amount <= 0 or units <= 0):
                    continue  # nothing owed yet: the period goes on
                charge_id = new_id("stc")
                start = since or now
                await store.insert_charge(session, charge_id, holder, (start, now), units, amount)
                if since is None:
                    continue  # the first row only marks where charging starts
                await self.outbox.add(
                    session,
                    FULFILMENT_TOPIC,
                    warehouse_id,
                    events_pb2.StorageCharged(
                        charge_id=charge_id,
                        seller_id=seller_id,
                        warehouse_id=warehouse_id,
                        period_start=convert.timestamp(start),
                        period_end=convert.timestamp(now),
                        units=units,
                        amount=money_pb2.Money(amount_minor=amount, currency=currency),
                    ),
                )
                self.metrics.storage_fees.labels(currency).inc(amount)
                charged += 1
        return charged

    # --- from commerce.fulfilment.v1 -------------------------------------------------------

    async def return_inspected(
        self, session: AsyncSession, message: order_events_pb2.ReturnInspected
    ) -> set[str]:
        """RESTOCK: the inspected units go back on hand in the warehouse they shipped from,
        exactly once per inspection (a replay, even with a new event id, finds it done).
        Returns the products whose stock changed."""
        if not message.inspection_id or not message.warehouse_id:
            raise InvalidEventError("inspection_id and warehouse_id are required")
        if message.disposition != order_pb2.RETURN_DISPOSITION_RESTOCK:
            return set()
        if not await store.mark_restocked(session, message.inspection_id, message.order_id, _now()):
            return set()
        touched: set[str] = set()
        lines = []
        for line in message.lines:
            if not 0 < line.quantity <= validation.MAX_STOCK:
                raise InvalidEventError(
                    f"inspected line {line.line_id} has quantity {line.quantity}"
                )
            touched.add(
                await self._on_hand(
                    session, line.sku_id, message.warehouse_id, line.quantity, "restocked"
                )
            )
            lines.append(
                events_pb2.ReservedLine(
                    line_id=line.line_id,
                    sku_id=line.sku_id,
                    warehouse_id=message.warehouse_id,
                    quantity=line.quantity,
                    fulfilled_by_platform=message.fulfilled_by_platform,
                )
            )
            self.metrics.restocked_units.inc(line.quantity)
        await self.outbox.add(
            session,
            FULFILMENT_TOPIC,
            message.warehouse_id,
            events_pb2.ReturnRestocked(
                inspection_id=message.inspection_id,
                order_id=message.order_id,
                warehouse_id=message.warehouse_id,
                lines=lines,
            ),
        )
        return touched

    async def package_ended(self, session: AsyncSession, package: order_pb2.Package) -> set[str]:
        """A package delivered or lost: the seller's delivery quality is judged again (once
        per package). Returns the products whose listing changed."""
        if not package.package_id or not package.seller_id:
            raise InvalidEventError("package_id and seller_id are required")
        lost = package.state == order_pb2.PACKAGE_STATE_LOST
        stamp = package.lost_at if lost else package.delivered_at
        at = stamp.ToDatetime(tzinfo=UTC) if stamp.seconds else _now()
        if not await store.record_package(
            session,
            package.package_id,
            package.seller_id,
            package.warehouse_id,
            late=package.late,
            lost=lost,
            at=at,
        ):
            return set()
        return set(await self._app.reassess_quality(session, {package.seller_id}, set()))
