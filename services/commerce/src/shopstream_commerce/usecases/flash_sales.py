"""Flash deals in live sessions: a SKU at a deal price for a short time, with a total and a
per-buyer limit (TikTok Shop's LIVE Flash Deal).

The SKU's seller starts one in a live session where the product is pinned; it opens after the
countdown. PlaceOrder lines attributed to that session take the deal price and claim units in
the order's own transaction (conditional updates: never more than the total, never more than a
buyer's limit; FAILED_PRECONDITION when none are left), and the orders reserve their stock
through catalog like any other. An order rejected, cancelled or expired before payment gives its
units back.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from shopstream.commerce.v1 import live_pb2
from shopstream_commerce import convert
from shopstream_commerce.domain import flash_sales as rules
from shopstream_commerce.domain import limits
from shopstream_commerce.domain.flash_sales import FlashSale
from shopstream_commerce.domain.limits import bounded
from shopstream_commerce.domain.records import OrderRecord, SkuInfo
from shopstream_commerce.store import flash_sales as store
from shopstream_commerce.store import repository as repo
from shopstream_commerce.usecases.context import Deps
from shopstream_commerce.usecases.live import LIVE, LIVE_TOPIC
from shopstream_platform.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
from shopstream_platform.grpc.auth import Principal, ensure_acts_for
from shopstream_platform.ids import new_id


class FlashSales:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def start(
        self,
        principal: Principal,
        live_session_id: str,
        sku_id: str,
        deal_price: int,
        currency: str,
        total: int,
        per_buyer: int,
        countdown_s: int,
        duration_s: int,
    ) -> FlashSale:
        for name, value in (("live_session_id", live_session_id), ("sku_id", sku_id)):
            if not value:
                raise InvalidArgumentError(name, "is required")
            bounded(name, value, limits.ID)
        async with self.deps.db.transaction() as session:
            live = await repo.load_live(session, live_session_id)
            if live is None:
                raise NotFoundError("live session", live_session_id)
            sku = (await repo.skus(session, [sku_id])).get(sku_id)
            if sku is None:
                raise NotFoundError("SKU", sku_id)
            ensure_acts_for(principal, "seller", sku.seller_id)
            if live.state != LIVE:
                raise FailedPreconditionError(f"live session {live_session_id} is not live")
            if sku.product_id not in live.pinned:
                raise FailedPreconditionError(
                    f"product {sku.product_id} is not pinned in live session {live_session_id}"
                )
            if currency != sku.currency:
                raise InvalidArgumentError("deal_price.currency", f"must be {sku.currency}")
            rules.check_terms(
                deal_price, sku.price_minor, total, per_buyer, countdown_s, duration_s
            )
            starts = self.deps.now() + timedelta(seconds=countdown_s)
            sale = FlashSale(
                new_id("fls"),
                live_session_id,
                sku.seller_id,
                sku.product_id,
                sku_id,
                deal_price,
                currency,
                total,
                0,
                per_buyer,
                starts,
                starts + timedelta(seconds=duration_s),
            )
            await store.insert(session, sale)
            await self.deps.outbox.add(
                session,
                LIVE_TOPIC,
                live_session_id,
                live_pb2.FlashSaleStarted(sale=convert.flash_sale_pb(sale)),
            )
        return sale

    async def get(self, flash_sale_id: str) -> FlashSale:
        if not flash_sale_id:
            raise InvalidArgumentError("flash_sale_id", "is required")
        bounded("flash_sale_id", flash_sale_id, limits.ID)
        async with self.deps.db.read() as session:
            sale = await store.load(session, flash_sale_id)
        if sale is None:
            raise NotFoundError("flash sale", flash_sale_id)
        return sale

    async def claim(
        self,
        session: AsyncSession,
        live_session_id: str,
        sku: SkuInfo,
        buyer_id: str,
        units: int,
        at: datetime,
    ) -> FlashSale | None:
        """In PlaceOrder's transaction: the open sale of this SKU in this session whose units
        the line takes (None: no sale open, the regular price applies)."""
        for sale in await store.of_session_sku(session, live_session_id, sku.sku_id):
            if not sale.open_at(at):
                continue
            if not await store.claim_total(session, sale.flash_sale_id, units):
                self.deps.metrics.flash_claims.labels("sold_out").inc()
                raise FailedPreconditionError(
                    f"flash sale {sale.flash_sale_id} has fewer than {units} units left"
                )
            if not await store.claim_for_buyer(
                session, sale.flash_sale_id, buyer_id, units, sale.per_buyer
            ):
                self.deps.metrics.flash_claims.labels("buyer_limit").inc()
                raise FailedPreconditionError(
                    f"flash sale {sale.flash_sale_id} allows {sale.per_buyer} units per buyer"
                )
            self.deps.metrics.flash_claims.labels("claimed").inc(units)
            return sale
        return None

    async def give_back(self, session: AsyncSession, order: OrderRecord) -> None:
        """An order that ends before payment (rejected, cancelled, expired) frees its units."""
        for line in order.lines:
            if line.flash_sale_id:
                await store.give_back(session, line.flash_sale_id, order.buyer_id, line.quantity)
