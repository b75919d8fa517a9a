"""Catalog use cases: each RPC and each consumed event is one transaction here.

The gRPC servicer and the event handlers call these; they hold no logic of their own. Each
mutation writes its events to the outbox in the same transaction and drops cached products
only after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from shopstream.catalog.v1 import events_pb2
from shopstream_catalog import convert
from shopstream_catalog.cache import ProductCache
from shopstream_catalog.domain import listing_rules, quality, validation
from shopstream_catalog.domain.categories import CATEGORIES
from shopstream_catalog.domain.model import (
    ListingStatus,
    Money,
    NewProduct,
    ProductView,
    QualityStats,
    QualityTier,
    Reason,
    Seller,
    SkuView,
    StockView,
)
from shopstream_catalog.metrics import CatalogMetrics
from shopstream_catalog.settings import CatalogSettings
from shopstream_catalog.store import fulfilment as fulfilment_store
from shopstream_catalog.store import repository as repo
from shopstream_platform.db.database import Database
from shopstream_platform.db.outbox import Outbox
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

log = logging.getLogger(__name__)

SELLERS_TOPIC = "catalog.sellers.v1"
PRODUCTS_TOPIC = "catalog.products.v1"
STOCK_TOPIC = "catalog.stock.v1"


@dataclass(frozen=True)
class ProductChanges:
    title: str | None = None
    description: str | None = None
    brand: str | None = None
    attributes: dict[str, str] | None = None
    prices: dict[str, Money] | None = None
    expected_version: int = 0


def _now() -> datetime:
    return datetime.now(UTC)


class CatalogApp:
    def __init__(
        self, db: Database, outbox: Outbox, settings: CatalogSettings, metrics: CatalogMetrics
    ) -> None:
        self.db = db
        self.outbox = outbox
        self.settings = settings
        self.metrics = metrics
        self.cache = ProductCache(settings.product_cache_size)

    # --- sellers --------------------------------------------------------------------------

    async def register_seller(
        self, principal: Principal, seller_id: str, display_name: str, country: str
    ) -> Seller:
        validation.validate_seller(seller_id, display_name, country.upper())
        ensure_acts_for(principal, "seller", seller_id)
        seller = Seller(seller_id, display_name.strip(), country.upper(), QualityTier.NEW, _now())
        async with self.db.transaction() as session:
            if not await repo.insert_seller(session, seller):
                raise AlreadyExistsError("seller", seller_id)
            await self.outbox.add(
                session,
                SELLERS_TOPIC,
                seller_id,
                events_pb2.SellerRegistered(seller=convert.seller_pb(seller)),
            )
        return seller

    async def get_seller(self, seller_id: str) -> Seller:
        validation.require_id("seller_id", seller_id)
        async with self.db.read() as session:
            seller = await repo.get_seller(session, seller_id)
        if seller is None:
            raise NotFoundError("seller", seller_id)
        return seller

    # --- products -------------------------------------------------------------------------

    async def create_product(self, principal: Principal, new: NewProduct) -> ProductView:
        validation.require_id("seller_id", new.seller_id)
        ensure_acts_for(principal, "seller", new.seller_id)
        validation.validate_new_product(new)
        async with self.db.transaction() as session:
            seller = await repo.get_seller(session, new.seller_id)
            if seller is None:
                raise NotFoundError("seller", new.seller_id)
            for i, new_sku in enumerate(new.skus):
                platform = await fulfilment_store.platform_among(session, new_sku.stock)
                if platform:
                    raise InvalidArgumentError(
                        f"skus[{i}].stock",
                        f"{sorted(platform)[0]} is a platform warehouse: send stock in with an "
                        "inbound shipment",
                    )
            if new.idempotency_key:
                existing = await repo.product_by_idempotency_key(
                    session, new.seller_id, new.idempotency_key
                )
                if existing is not None:
                    return (await repo.load_products(session, [existing]))[existing]
            now = _now()
            product_id = new_id("prd")
            sku_views = [
                SkuView(
                    sku_id=new_id("sku"),
                    sku_code=s.sku_code,
                    variant_attributes=s.variant_attributes,
                    price=s.price,
                    stock=[StockView(w, q, 0) for w, q in sorted(s.stock.items())],
                )
                for s in new.skus
            ]
            draft = ProductView(
                product_id=product_id,
                seller_id=new.seller_id,
                title=new.title.strip(),
                description=new.description,
                category_id=new.category_id,
                brand=new.brand.strip(),
                attributes=new.attributes,
                status=ListingStatus.PENDING_REVIEW,
                reasons=[],
                created_at=now,
                updated_at=now,
                version=1,
                skus=sku_views,
            )
            _check_event_size(draft)
            decision = await self._decide(session, draft, seller.quality_tier, listings_before=None)
            view = replace(draft, status=decision.status, reasons=decision.reasons)
            await repo.insert_product(session, view, new.idempotency_key)
            await self.outbox.add(
                session,
                PRODUCTS_TOPIC,
                product_id,
                events_pb2.ProductCreated(product=convert.product_pb(view)),
            )
            await self._status_event(session, view, None)
        return view

    async def _decide(
        self,
        session: AsyncSession,
        view: ProductView,
        tier: QualityTier,
        listings_before: int | None,
    ) -> listing_rules.Decision:
        min_price = min(s.price.amount_minor for s in view.skus)
        currency = view.skus[0].price.currency
        if listings_before is None:
            listings_before = await repo.count_products(session, view.seller_id)
        decision = listing_rules.evaluate_listing(
            listing_rules.ListingFacts(
                title=view.title,
                description=view.description,
                brand=view.brand,
                attributes=view.attributes,
                category=CATEGORIES[view.category_id],
                min_price_minor=min_price,
            ),
            listing_rules.SellerContext(
                listings_before=listings_before,
                tier=tier,
                category_prices=await repo.category_prices(
                    session, view.category_id, currency, exclude_product=view.product_id
                ),
            ),
            self.settings.listing,
        )
        first = decision.reasons[0].code if decision.reasons else "NONE"
        self.metrics.listing_decisions.labels(decision.status.name, first).inc()
        return decision

    async def _status_event(
        self, session: AsyncSession, view: ProductView, previous: ListingStatus | None
    ) -> None:
        await self.outbox.add(
            session,
            PRODUCTS_TOPIC,
            view.product_id,
            events_pb2.ListingStatusChanged(
                product_id=view.product_id,
                seller_id=view.seller_id,
                previous_status=convert.listing_status_pb(previous),
                status=convert.listing_status_pb(view.status),
                reasons=[convert.reason_pb(r) for r in view.reasons],
                changed_at=convert.timestamp(view.updated_at),
            ),
        )

    async def update_product(
        self, principal: Principal, product_id: str, changes: ProductChanges
    ) -> ProductView:
        validation.require_id("product_id", product_id)
        async with self.db.transaction() as session:
            current = (await repo.load_products(session, [product_id])).get(product_id)
            if current is None:
                raise NotFoundError("product", product_id)
            ensure_acts_for(principal, "seller", current.seller_id)
            validation.validate_text(changes.title, changes.description, changes.brand)
            if changes.attributes is not None:
                validation.validate_attributes("attributes", changes.attributes)
            if changes.prices and len(changes.prices) > validation.MAX_SKUS:
                raise InvalidArgumentError("prices", f"at most {validation.MAX_SKUS} prices")
            if changes.expected_version and changes.expected_version != current.version:
                raise ConflictError(
                    f"product {product_id} is at version {current.version}, not {changes.expected_version}"
                )
            skus = current.skus
            price_events = []
            if changes.prices:
                by_id = {s.sku_id: s for s in skus}
                for sku_id, price in changes.prices.items():
                    sku = by_id.get(sku_id)
                    if sku is None:
                        raise InvalidArgumentError(
                            "prices.sku_id", f"SKU {sku_id!r} is not part of {product_id}"
                        )
                    validation.validate_money(f"prices[{sku_id}].price", price)
                    if price.currency != sku.price.currency:
                        raise InvalidArgumentError(
                            f"prices[{sku_id}].price.currency", "cannot change currency"
                        )
                    if price != sku.price:
                        price_events.append(
                            events_pb2.PriceChanged(
                                product_id=product_id,
                                sku_id=sku_id,
                                old_price=convert.money_pb(sku.price),
                                new_price=convert.money_pb(price),
                            )
                        )
                        by_id[sku_id] = replace(sku, price=price)
                skus = [by_id[s.sku_id] for s in skus]
            updated = replace(
                current,
                title=changes.title.strip() if changes.title else current.title,
                description=changes.description
                if changes.description is not None
                else current.description,
                brand=changes.brand.strip() if changes.brand else current.brand,
                attributes=changes.attributes if changes.attributes else current.attributes,
                skus=skus,
                updated_at=_now(),
                version=current.version + 1,
            )
            _check_event_size(updated)
            if current.status != ListingStatus.SUPPRESSED:
                seller = await repo.get_seller(session, current.seller_id)
                tier = seller.quality_tier if seller else QualityTier.NEW
                # An edit is not a new listing: judge the seller by the listings before this one.
                before = await repo.count_products(session, current.seller_id) - 1
                decision = _after_edit(current, await self._decide(session, updated, tier, before))
                updated = replace(updated, status=decision.status, reasons=decision.reasons)
            await repo.update_product_row(session, updated)
            for event in price_events:
                await self.outbox.add(session, PRODUCTS_TOPIC, product_id, event)
            await self.outbox.add(
                session,
                PRODUCTS_TOPIC,
                product_id,
                events_pb2.ProductUpdated(product=convert.product_pb(updated)),
            )
            if updated.status != current.status:
                await self._status_event(session, updated, current.status)
        self.cache.invalidate([product_id])
        return updated

    async def get_product(self, product_id: str) -> ProductView:
        cached = self.cache.get(product_id)
        if cached is not None:
            return cached
        validation.require_id("product_id", product_id)
        found = await self.batch_get([product_id])
        if product_id not in found:
            raise NotFoundError("product", product_id)
        return found[product_id]

    async def batch_get(self, product_ids: Sequence[str]) -> dict[str, ProductView]:
        result: dict[str, ProductView] = {}
        missing = []
        for product_id in product_ids:
            cached = self.cache.get(product_id)
            if cached is not None:
                result[product_id] = cached
            else:
                missing.append(product_id)
        if missing:
            epoch = self.cache.epoch
            async with self.db.read() as session:
                loaded = await repo.load_products(session, missing)
            for view in loaded.values():
                self.cache.put(view, epoch)
            result.update(loaded)
        return result

    async def search(self, query: repo.SearchQuery) -> tuple[list[ProductView], str]:
        validation.max_length("text", query.text, validation.MAX_SEARCH_TEXT)
        if query.min_price_minor < 0 or query.max_price_minor < 0:
            raise InvalidArgumentError("min_price_minor", "price bounds must not be negative")
        if query.max_price_minor and query.min_price_minor > query.max_price_minor:
            raise InvalidArgumentError("max_price_minor", "must be at least min_price_minor")
        if query.category_id and query.category_id not in CATEGORIES:
            raise InvalidArgumentError("category_id", f"unknown category {query.category_id!r}")
        async with self.db.read() as session:
            ids, token = await repo.search_products(session, query)
        views = await self.batch_get(ids)
        return [views[i] for i in ids if i in views], token

    # --- stock ----------------------------------------------------------------------------

    async def adjust_stock(
        self, principal: Principal, sku_id: str, warehouse_id: str, delta: int, reason: str
    ) -> StockView:
        validation.require_id("sku_id", sku_id)
        validation.require_id("warehouse_id", warehouse_id)
        validation.validate_stock_delta(delta)
        validation.max_length("reason", reason, validation.MAX_REASON)
        async with self.db.transaction() as session:
            product_id = await repo.sku_product(session, sku_id)
            if product_id is None:
                raise NotFoundError("sku", sku_id)
            product = (await repo.load_products(session, [product_id]))[product_id]
            ensure_acts_for(principal, "seller", product.seller_id)
            if await fulfilment_store.platform_among(session, [warehouse_id]):
                raise FailedPreconditionError(
                    f"{warehouse_id} is a platform warehouse: its stock arrives only through "
                    "inbound shipments it received"
                )
            [sku] = [s for s in product.skus if s.sku_id == sku_id]
            levels = {level.warehouse_id: level for level in sku.stock}
            current = levels.get(warehouse_id)
            if current is None and len(levels) >= validation.MAX_WAREHOUSES:
                raise InvalidArgumentError(
                    "warehouse_id",
                    f"{sku_id} already has stock in {validation.MAX_WAREHOUSES} warehouses",
                )
            if (current.on_hand if current else 0) + delta > validation.MAX_STOCK:
                raise InvalidArgumentError(
                    "delta",
                    f"on-hand of {sku_id} in {warehouse_id} would exceed {validation.MAX_STOCK}",
                )
            level = await repo.adjust_on_hand(
                session, sku_id, warehouse_id, delta, max_on_hand=validation.MAX_STOCK
            )
            if level is None:
                raise FailedPreconditionError(
                    f"on-hand of {sku_id} in {warehouse_id} cannot drop below what is reserved"
                )
            await repo.refresh_available(session, [product_id])
            await self.stock_event(session, product_id, sku_id, level, reason or "adjustment")
        self.cache.invalidate([product_id])
        return level

    async def stock_event(
        self, session: AsyncSession, product_id: str, sku_id: str, level: StockView, cause: str
    ) -> None:
        await self.outbox.add(
            session,
            PRODUCTS_TOPIC,
            product_id,
            events_pb2.StockChanged(
                product_id=product_id,
                sku_id=sku_id,
                warehouse_id=level.warehouse_id,
                on_hand=level.on_hand,
                reserved=level.reserved,
                cause=cause,
            ),
        )

    # --- review and quality ---------------------------------------------------------------

    async def review_listing(
        self, principal: Principal, product_id: str, approve: bool, reason: str
    ) -> ProductView:
        if not principal.is_admin:
            raise PermissionDeniedError("only admins review listings")
        validation.require_id("product_id", product_id)
        if not approve and not reason.strip():
            raise InvalidArgumentError("reason", "is required when rejecting")
        validation.max_length("reason", reason, validation.MAX_REASON)
        async with self.db.transaction() as session:
            current = (await repo.load_products(session, [product_id])).get(product_id)
            if current is None:
                raise NotFoundError("product", product_id)
            if current.status == ListingStatus.SUPPRESSED:
                raise FailedPreconditionError(
                    "a suppressed listing cannot be reviewed back to life"
                )
            status = ListingStatus.ACTIVE if approve else ListingStatus.REJECTED
            reasons = [
                Reason(
                    "REVIEW_APPROVED" if approve else "REVIEW_REJECTED",
                    reason or "approved by review",
                )
            ]
            now = _now()
            await repo.set_status(session, product_id, status, reasons, now)
            updated = replace(
                current, status=status, reasons=reasons, updated_at=now, version=current.version + 1
            )
            await self._status_event(session, updated, current.status)
        self.cache.invalidate([product_id])
        return updated

    async def seller_quality(
        self, principal: Principal, seller_id: str
    ) -> tuple[QualityTier, QualityStats, int, list[Reason]]:
        """(tier, rates over the window, suppressed listings, why the rates give that tier)."""
        validation.require_id("seller_id", seller_id)
        ensure_acts_for(principal, "seller", seller_id)
        async with self.db.read() as session:
            seller = await repo.get_seller(session, seller_id)
            if seller is None:
                raise NotFoundError("seller", seller_id)
            stats = await self._stats(session, seller_id, self._window_start())
            suppressed = await repo.count_suppressed(session, seller_id)
        _, reasons = quality.assess(stats, self.settings.quality)
        return seller.quality_tier, stats, suppressed, reasons

    async def _stats(self, session: AsyncSession, seller_id: str, since: datetime) -> QualityStats:
        """Order outcomes and delivery outcomes (packages) of the seller in the window."""
        stats = await repo.seller_stats(session, seller_id, since)
        packages, late, lost = await fulfilment_store.delivery_counts(session, seller_id, since)
        return replace(stats, packages=packages, late_packages=late, lost_packages=lost)

    def _window_start(self) -> datetime:
        return _now() - timedelta(days=self.settings.quality.window_days)

    async def reassess_quality(
        self, session: AsyncSession, seller_ids: set[str], product_ids: set[str]
    ) -> list[str]:
        """Re-tier sellers and suppress listings after new outcomes; returns products changed."""
        since = self._window_start()
        t = self.settings.quality
        changed: list[str] = []
        for product_id in sorted(product_ids):
            orders, refunded = await repo.product_refund_counts(session, product_id, since)
            reason = quality.suppression_reason(orders, refunded, t)
            if reason is None:
                continue
            current = (await repo.load_products(session, [product_id])).get(product_id)
            if current is None or current.status == ListingStatus.SUPPRESSED:
                continue
            now = _now()
            await repo.set_status(session, product_id, ListingStatus.SUPPRESSED, [reason], now)
            updated = replace(
                current,
                status=ListingStatus.SUPPRESSED,
                reasons=[reason],
                updated_at=now,
                version=current.version + 1,
            )
            await self._status_event(session, updated, current.status)
            self.metrics.suppressions.inc()
            log.info(
                "listing suppressed", extra={"product_id": product_id, "reason": reason.message}
            )
            changed.append(product_id)
        for seller_id in sorted(seller_ids):
            seller = await repo.get_seller(session, seller_id)
            if seller is None:
                continue
            stats = await self._stats(session, seller_id, since)
            tier, reasons = quality.assess(stats, t)
            if tier == seller.quality_tier:
                continue
            await repo.set_seller_tier(session, seller_id, tier)
            suppressed = await repo.count_suppressed(session, seller_id)
            await self.outbox.add(
                session,
                SELLERS_TOPIC,
                seller_id,
                events_pb2.SellerQualityChanged(
                    quality=convert.quality_pb(
                        seller_id, tier, stats, t.window_days, suppressed, reasons
                    ),
                    previous_tier=convert.quality_tier_pb(seller.quality_tier),
                    reasons=[convert.reason_pb(r) for r in reasons],
                ),
            )
            log.info(
                "seller tier changed",
                extra={
                    "seller_id": seller_id,
                    "tier": tier.name,
                    "reasons": "; ".join(r.message for r in reasons),
                },
            )
        return changed


def _check_event_size(view: ProductView) -> None:
    """The product travels whole in ProductCreated / ProductUpdated: keep it far below the
    broker's record limit, naming the part of the request that made it too big."""
    message = convert.product_pb(view)
    size = message.ByteSize()
    if size <= validation.MAX_PRODUCT_EVENT_BYTES:
        return
    parts = {
        "description": len(view.description.encode()),
        "attributes": sum(len(k.encode()) + len(v.encode()) for k, v in view.attributes.items()),
        "skus": sum(s.ByteSize() for s in message.skus),
    }
    field = max(parts, key=parts.__getitem__)
    raise InvalidArgumentError(
        field,
        f"the listing would encode to {size} bytes, above the "
        f"{validation.MAX_PRODUCT_EVENT_BYTES}-byte limit; shorten {field}",
    )


def _after_edit(current: ProductView, decision: listing_rules.Decision) -> listing_rules.Decision:
    """The status an edit leads to, given the rules' verdict on the edited listing.

    Hard rules always apply. A live listing stays live unless the edit makes its price
    suspicious; a listing a reviewer rejected goes back to review rather than straight live.
    """
    if decision.status == ListingStatus.REJECTED:
        return decision
    if current.status == ListingStatus.ACTIVE:
        price_holds = [r for r in decision.reasons if r.code == "PRICE_FAR_BELOW_MEDIAN"]
        if price_holds:
            return listing_rules.Decision(ListingStatus.PENDING_REVIEW, price_holds)
        return listing_rules.Decision(ListingStatus.ACTIVE, current.reasons)
    if any(r.code == "REVIEW_REJECTED" for r in current.reasons):
        resubmitted = Reason("RESUBMITTED", "edited after a rejection; waiting for review")
        return listing_rules.Decision(
            ListingStatus.PENDING_REVIEW, [resubmitted, *decision.reasons]
        )
    return decision
