"""Order use cases: placing, the saga with catalog, paying, shipping, delivery, cancel, expiry, refunds.

Every state change goes through `_apply`: the domain allows it, the row is written under an
optimistic version check, the event goes to the outbox in the same transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from google.protobuf.message import Message
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream.catalog.v1 import events_pb2 as catalog_events
from shopstream.commerce.v1 import order_events_pb2 as ev
from shopstream_commerce import convert
from shopstream_commerce.access import ensure_can_see
from shopstream_commerce.domain import limits
from shopstream_commerce.domain import orders as saga
from shopstream_commerce.domain.commission_rates import rate_for
from shopstream_commerce.domain.ledgers import page_size
from shopstream_commerce.domain.limits import bounded
from shopstream_commerce.domain.orders import OrderState
from shopstream_commerce.domain.packages import PackageRecord
from shopstream_commerce.domain.records import Attribution, Line, OrderRecord
from shopstream_commerce.payments.provider import PaymentProvider
from shopstream_commerce.store import repository as repo
from shopstream_commerce.usecases.commissions import Commissions
from shopstream_commerce.usecases.context import Deps
from shopstream_commerce.usecases.flash_sales import FlashSales
from shopstream_commerce.usecases.fulfilment import Fulfilment
from shopstream_commerce.usecases.leaks import LeakCheck
from shopstream_commerce.usecases.live import Live
from shopstream_commerce.usecases.payments import PAYMENTS_TOPIC, Payments
from shopstream_commerce.usecases.settlements import SellerLedger
from shopstream_commerce.usecases.transitions import ORDERS_TOPIC, OrderTransitions
from shopstream_platform.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
)
from shopstream_platform.grpc.auth import Principal, ensure_acts_for
from shopstream_platform.ids import new_id
from shopstream_platform.kafka.events import Event, InvalidEventError
from shopstream_platform.paging import decode_cursor, encode_cursor

log = logging.getLogger(__name__)

__all__ = ["ORDERS_TOPIC", "PAYMENTS_TOPIC", "LineRequest", "Orders"]


@dataclass(frozen=True)
class LineRequest:
    sku_id: str
    quantity: int
    attribution: Attribution


class Orders:
    def __init__(
        self,
        deps: Deps,
        transitions: OrderTransitions,
        provider: PaymentProvider,
        commissions: Commissions,
        live: Live,
        leak_check: LeakCheck,
        seller_ledger: SellerLedger,
        flash_sales: FlashSales,
        fulfilment: Fulfilment,
    ) -> None:
        self.deps = deps
        self.fulfilment = fulfilment
        self.transitions = transitions
        self.commissions = commissions
        self.live = live
        self.leak_check = leak_check
        self.seller_ledger = seller_ledger
        self.flash_sales = flash_sales
        self.payments = Payments(deps, transitions, provider, self._settle_charge)

    # --- placing --------------------------------------------------------------------------

    async def place(
        self,
        principal: Principal,
        buyer_id: str,
        lines: list[LineRequest],
        key: str,
        consent: bool,
        region: str = "",
    ) -> OrderRecord:
        if not buyer_id:
            raise InvalidArgumentError("buyer_id", "is required")
        bounded("buyer_id", buyer_id, limits.ID)
        bounded("ship_to_region", region, limits.REGION)
        ensure_acts_for(principal, "buyer", buyer_id)
        if not key or len(key) > limits.KEY:
            raise InvalidArgumentError(
                "idempotency_key", f"is required (1-{limits.KEY} characters)"
            )
        if not lines:
            raise InvalidArgumentError("lines", "at least one line is required")
        if len(lines) > self.deps.settings.max_lines_per_order:
            raise InvalidArgumentError(
                "lines", f"at most {self.deps.settings.max_lines_per_order} lines"
            )
        for i, line in enumerate(lines):
            if not line.sku_id:
                raise InvalidArgumentError(f"lines[{i}].sku_id", "is required")
            bounded(f"lines[{i}].sku_id", line.sku_id, limits.ID)
            a = line.attribution
            for name, value in (
                ("creator_id", a.creator_id),
                ("live_session_id", a.live_session_id),
                ("video_id", a.video_id),
            ):
                bounded(f"lines[{i}].attribution.{name}", value, limits.ID)
            bounded(f"lines[{i}].attribution.ad_click_id", a.ad_click_id, limits.AD_CLICK_ID)
            if not 1 <= line.quantity <= self.deps.settings.max_quantity_per_line:
                raise InvalidArgumentError(
                    f"lines[{i}].quantity", f"must be 1..{self.deps.settings.max_quantity_per_line}"
                )
        try:
            async with self.deps.db.transaction() as session:
                existing = await repo.order_id_for_key(session, buyer_id, key)
                if existing is not None:
                    return (await repo.load_orders(session, [existing]))[existing]
                order = await self._new_order(session, buyer_id, lines, consent, region)
                await repo.insert_order(session, order, key)
                await self.deps.outbox.add(
                    session,
                    ORDERS_TOPIC,
                    order.order_id,
                    ev.OrderPlaced(order=convert.order_pb(order)),
                )
        except IntegrityError:
            # The same key raced in from a concurrent call: that call's order is the answer.
            async with self.deps.db.read() as session:
                existing = await repo.order_id_for_key(session, buyer_id, key)
                if existing is None:
                    raise
                return (await repo.load_orders(session, [existing]))[existing]
        self.deps.metrics.orders.labels(OrderState.PLACED.name).inc()
        return order

    async def _new_order(
        self,
        session: AsyncSession,
        buyer_id: str,
        requested: list[LineRequest],
        consent: bool,
        region: str,
    ) -> OrderRecord:
        known = await repo.skus(session, [line.sku_id for line in requested])
        now = self.deps.now()
        order_id = new_id("ord")
        lines: list[Line] = []
        for i, request in enumerate(requested):
            sku = known.get(request.sku_id)
            if sku is None:
                raise InvalidArgumentError(f"lines[{i}].sku_id", f"unknown SKU {request.sku_id!r}")
            price, flash_sale_id = sku.price_minor, ""
            if request.attribution.live_session_id:
                deal = await self.flash_sales.claim(
                    session,
                    request.attribution.live_session_id,
                    sku,
                    buyer_id,
                    request.quantity,
                    now,
                )
                if deal is not None:
                    price, flash_sale_id = deal.deal_price_minor, deal.flash_sale_id
            bps = 0
            creator = request.attribution.creator_id
            if creator:
                bps = rate_for(
                    await repo.rate_changes(session, sku.product_id),
                    now,
                    self.deps.settings.default_commission_bps,
                    creator,
                    via_ad=bool(request.attribution.ad_click_id),
                    locks=await repo.rate_locks(session, sku.product_id, creator),
                    approved=await repo.creator_approved(session, sku.product_id, creator),
                )
            lines.append(
                Line(
                    line_id=f"{order_id}-{i + 1}",
                    sku_id=sku.sku_id,
                    product_id=sku.product_id,
                    seller_id=sku.seller_id,
                    quantity=request.quantity,
                    unit_price_minor=price,
                    currency=sku.currency,
                    attribution=request.attribution,
                    commission_bps=bps,
                    category_id=sku.category_id,
                    flash_sale_id=flash_sale_id,
                )
            )
        sellers = {line.seller_id for line in lines}
        if len(sellers) > 1:
            raise InvalidArgumentError(
                "lines", "lines from several sellers: place one order per seller"
            )
        currencies = {line.currency for line in lines}
        if len(currencies) > 1:
            raise InvalidArgumentError("lines", "lines in several currencies")
        return OrderRecord(
            order_id=order_id,
            buyer_id=buyer_id,
            seller_id=lines[0].seller_id,
            state=OrderState.PLACED,
            lines=lines,
            total_minor=sum(line.total_minor for line in lines),
            currency=lines[0].currency,
            tracking_consent=consent,
            placed_at=now,
            updated_at=now,
            version=1,
            ship_to_region=region,
        )

    # --- the saga step by step ------------------------------------------------------------

    async def on_stock_answer(self, event: Event[Message], session: AsyncSession) -> None:
        """catalog.stock.v1: the reservation's outcome moves a PLACED order on."""
        message = event.message
        order_id: str = message.order_id  # type: ignore[attr-defined]
        if not order_id:
            raise InvalidEventError("order_id is empty")
        order = (await repo.load_orders(session, [order_id])).get(order_id)
        if order is None:
            raise InvalidEventError(f"stock answer for unknown order {order_id}")
        if isinstance(message, catalog_events.StockReserved):
            # Whatever the order's state: catalog holds the stock until it releases or commits.
            await self.leak_check.on_stock_held(session, order_id)
            if not saga.can("reserve", order.state):
                # Cancelled meanwhile: catalog releases on our OrderCancelled; nothing to do here.
                return
            expires = self.deps.now() + timedelta(seconds=self.deps.settings.payment_window_s)
            await self.transitions.apply(
                session,
                order,
                "reserve",
                lambda o: ev.OrderReserved(order=convert.order_pb(o)),
                expires_at=expires,
            )
            await self.fulfilment.on_reserved(session, order, message)
            self.deps.metrics.saga_step.labels("placed_to_reserved").observe(
                (self.deps.now() - order.placed_at).total_seconds()
            )
        elif isinstance(message, catalog_events.StockReservationRejected):
            if not saga.can("reject", order.state):
                return
            reason = message.message or catalog_events.RejectionReason.Name(message.reason)
            await self.transitions.apply(
                session,
                order,
                "reject",
                lambda o: ev.OrderRejected(
                    order=convert.order_pb(o), reason=reason, sku_id=message.sku_id
                ),
                rejection_reason=reason,
                rejected_sku_id=message.sku_id,
            )
            await self.flash_sales.give_back(session, order)
            self.deps.metrics.saga_step.labels("placed_to_rejected").observe(
                (self.deps.now() - order.placed_at).total_seconds()
            )

    async def pay(
        self, principal: Principal, order_id: str, card_token: str
    ) -> tuple[OrderRecord, str]:
        bounded("order_id", order_id, limits.ID)
        if not card_token:
            raise InvalidArgumentError("card_token", "is required")
        bounded("card_token", card_token, limits.TOKEN)
        async with self.deps.db.read() as session:
            order = await self.transitions.load(session, order_id)
        ensure_acts_for(principal, "buyer", order.buyer_id)

        def payable(current: OrderRecord) -> None:
            saga.transition("pay", current.state, order_id)
            if current.expires_at is not None and current.expires_at <= self.deps.now():
                raise FailedPreconditionError(f"order {order_id} payment window has closed")

        payable(order)
        # The intent commits first; the provider is called outside any transaction.
        return await self.payments.charge(order, card_token, payable)

    async def _settle_charge(
        self, session: AsyncSession, order_id: str, payment_id: str, now: datetime
    ) -> tuple[OrderRecord | None, bool]:
        """A charge succeeded: PAID (with commissions and live GMV) if the order is still payable;
        (order, False) when it expired or was cancelled meanwhile (the charge is refunded)."""
        current = await self.transitions.find(session, order_id)
        if current is None or not saga.can("pay", current.state):
            return current, False
        paid = await self.transitions.apply(
            session,
            current,
            "pay",
            lambda o: ev.OrderPaid(
                order=convert.order_pb(o),
                payment_id=payment_id,
                paid_at=convert.timestamp(now),
            ),
            payment_id=payment_id,
            expires_at=None,
            ship_by=now + timedelta(seconds=self.deps.settings.ship_within_s),
        )
        await repo.set_paid_at(session, order_id, now)
        commission = await self.commissions.accrue(session, paid)
        await self.seller_ledger.on_paid(session, paid, commission)
        await self.live.add_sale(session, paid)
        self.deps.metrics.gmv.labels(paid.currency).inc(paid.total_minor)
        self.deps.metrics.saga_step.labels("reserved_to_paid").observe(
            (now - current.placed_at).total_seconds()
        )
        return paid, True

    async def cancel(self, principal: Principal, order_id: str, reason: str) -> OrderRecord:
        bounded("reason", reason, limits.REASON)
        async with self.deps.db.transaction() as session:
            order = await self.transitions.load(session, order_id)
            ensure_acts_for(principal, "buyer", order.buyer_id)
            previous = order.state
            cancelled = await self.transitions.apply(
                session,
                order,
                "cancel",
                lambda o: ev.OrderCancelled(
                    order=convert.order_pb(o),
                    reason=reason or "cancelled by buyer",
                    previous_state=convert.order_state_pb(previous),
                ),
                expires_at=None,
            )
            await self.flash_sales.give_back(session, order)
            return cancelled

    async def expire_due(self) -> int:
        """Expire unpaid reservations whose window closed; catalog releases their stock."""
        async with self.deps.db.read() as session:
            due = await repo.expired_orders(session, self.deps.now())
        expired = 0
        for order_id in due:
            async with self.deps.db.transaction() as session:
                order = await self.transitions.load(session, order_id)
                if (
                    order.state != OrderState.RESERVED
                    or order.expires_at is None
                    or order.expires_at > self.deps.now()
                ):
                    continue
                await self.transitions.apply(
                    session,
                    order,
                    "expire",
                    lambda o: ev.OrderExpired(order=convert.order_pb(o)),
                    expires_at=None,
                )
                await self.flash_sales.give_back(session, order)
                expired += 1
        return expired

    async def ship(self, principal: Principal, order_id: str, tracking: str) -> OrderRecord:
        """ShipOrder: the seller's waiting packages with their tracking number (an order
        reserved before packages existed ships as one, as before)."""
        if not tracking:
            raise InvalidArgumentError("tracking_number", "is required")
        bounded("tracking_number", tracking, limits.TRACKING)
        async with self.deps.db.read() as session:
            order = await self.transitions.load(session, order_id)
            ensure_acts_for(principal, "seller", order.seller_id)
            has_packages = bool(await self.fulfilment.of_order(session, order_id))
        if has_packages:
            return await self.fulfilment.ship_order(principal, order, tracking)
        async with self.deps.db.transaction() as session:
            order = await self.transitions.load(session, order_id)
            await self.fulfilment.no_open_cancellation(session, order_id)
            now = self.deps.now()
            shipped = await self.transitions.apply(
                session,
                order,
                "ship",
                lambda o: ev.OrderShipped(
                    order=convert.order_pb(o),
                    tracking_number=tracking,
                    shipped_at=convert.timestamp(now),
                    ship_by=convert.timestamp(o.ship_by or now),
                ),
                tracking_number=tracking,
                shipped_at=now,
            )
        return shipped

    async def confirm_delivery(self, principal: Principal, order_id: str) -> OrderRecord:
        async with self.deps.db.transaction() as session:
            order = await self.transitions.load(session, order_id)
            ensure_acts_for(principal, "buyer", order.buyer_id)
            if await self.fulfilment.of_order(session, order_id):
                return await self.fulfilment.confirm_delivery(session, order)
            now = self.deps.now()
            return await self.transitions.apply(
                session,
                order,
                "deliver",
                lambda o: ev.OrderDelivered(
                    order=convert.order_pb(o), delivered_at=convert.timestamp(now)
                ),
                delivered_at=now,
            )

    # --- reading --------------------------------------------------------------------------

    async def get(self, principal: Principal, order_id: str) -> OrderRecord:
        async with self.deps.db.read() as session:
            order = await self.transitions.load(session, order_id)
        ensure_can_see(principal, order)
        return order

    async def get_with_packages(
        self, principal: Principal, order_id: str
    ) -> tuple[OrderRecord, list[PackageRecord]]:
        async with self.deps.db.read() as session:
            order = await self.transitions.load(session, order_id)
            ensure_can_see(principal, order)
            return order, await self.fulfilment.of_order(session, order_id)

    async def list(
        self, principal: Principal, buyer_id: str, seller_id: str, size: int, token: str
    ) -> tuple[list[OrderRecord], str]:
        bounded("buyer_id", buyer_id, limits.ID)
        bounded("seller_id", seller_id, limits.ID)
        if bool(buyer_id) == bool(seller_id):
            raise InvalidArgumentError("buyer_id", "give exactly one of buyer_id or seller_id")
        if buyer_id:
            ensure_acts_for(principal, "buyer", buyer_id)
        else:
            ensure_acts_for(principal, "seller", seller_id)
        settings = self.deps.settings
        size = page_size(size, settings.list_default_page_size, settings.list_max_page_size)
        after = decode_cursor(token)
        async with self.deps.db.read() as session:
            ids = await repo.list_orders(
                session, buyer_id=buyer_id, seller_id=seller_id, after=after, limit=size + 1
            )
            found = await repo.load_orders(session, ids[:size])
        next_token = encode_cursor(ids[size - 1]) if len(ids) > size else ""
        return [found[i] for i in ids[:size]], next_token
