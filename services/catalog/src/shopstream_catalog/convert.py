"""Domain shapes ↔ protobuf messages, in one place for the gRPC API and the published events."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from google.protobuf.timestamp_pb2 import Timestamp

from shopstream.catalog.v1 import catalog_pb2, catalog_service_pb2
from shopstream.common.v1 import money_pb2
from shopstream_catalog.domain.categories import CATEGORIES
from shopstream_catalog.domain.fulfilment import InboundShipment, InboundState, Warehouse
from shopstream_catalog.domain.model import (
    ListingStatus,
    Money,
    NewProduct,
    NewSku,
    ProductView,
    QualityStats,
    QualityTier,
    Reason,
    Seller,
    StockView,
)


def timestamp(t: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(t)
    return ts


def money_pb(m: Money) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=m.amount_minor, currency=m.currency)


def money(m: money_pb2.Money) -> Money:
    return Money(amount_minor=m.amount_minor, currency=m.currency.upper())


def reason_pb(r: Reason) -> catalog_pb2.StatusReason:
    return catalog_pb2.StatusReason(code=r.code, message=r.message)


def stock_pb(s: StockView) -> catalog_pb2.StockLevel:
    return catalog_pb2.StockLevel(
        warehouse_id=s.warehouse_id, on_hand=s.on_hand, reserved=s.reserved
    )


def product_pb(p: ProductView) -> catalog_pb2.Product:
    return catalog_pb2.Product(
        product_id=p.product_id,
        seller_id=p.seller_id,
        title=p.title,
        description=p.description,
        category_id=p.category_id,
        brand=p.brand,
        attributes=p.attributes,
        skus=[
            catalog_pb2.Sku(
                sku_id=s.sku_id,
                variant_attributes=s.variant_attributes,
                price=money_pb(s.price),
                available=s.available,
                stock=[stock_pb(level) for level in s.stock],
            )
            for s in p.skus
        ],
        status=listing_status_pb(p.status),
        status_reasons=[reason_pb(r) for r in p.reasons],
        created_at=timestamp(p.created_at),
        updated_at=timestamp(p.updated_at),
        version=p.version,
    )


# The domain's enums mirror the protos' by number (tests/unit/test_enum_mirrors.py checks).
def listing_status_pb(status: ListingStatus | None) -> catalog_pb2.ListingStatus.ValueType:
    """None: UNSPECIFIED (a new listing had no status before)."""
    return cast("catalog_pb2.ListingStatus.ValueType", int(status or 0))


def quality_tier_pb(tier: QualityTier) -> catalog_pb2.QualityTier.ValueType:
    return cast("catalog_pb2.QualityTier.ValueType", int(tier))


def seller_pb(s: Seller) -> catalog_pb2.Seller:
    return catalog_pb2.Seller(
        seller_id=s.seller_id,
        display_name=s.display_name,
        country=s.country,
        quality_tier=quality_tier_pb(s.quality_tier),
        registered_at=timestamp(s.registered_at),
    )


def quality_pb(
    seller_id: str,
    tier: QualityTier,
    stats: QualityStats,
    window_days: int,
    suppressed: int,
    reasons: list[Reason] | None = None,
) -> catalog_pb2.SellerQuality:
    return catalog_pb2.SellerQuality(
        seller_id=seller_id,
        tier=quality_tier_pb(tier),
        orders=stats.orders,
        refund_rate=stats.refund_rate,
        cancellation_rate=stats.cancellation_rate,
        late_shipment_rate=stats.late_shipment_rate,
        window_days=window_days,
        suppressed_listings=suppressed,
        packages=stats.packages,
        late_delivery_rate=stats.late_delivery_rate,
        lost_parcel_rate=stats.lost_parcel_rate,
        tier_reasons=[reason_pb(r) for r in reasons or []],
    )


def warehouse_pb(w: Warehouse) -> catalog_pb2.Warehouse:
    return catalog_pb2.Warehouse(
        warehouse_id=w.warehouse_id,
        display_name=w.display_name,
        region=w.region,
        platform=w.platform,
        seller_id=w.seller_id,
    )


def inbound_pb(s: InboundShipment) -> catalog_pb2.InboundShipment:
    message = catalog_pb2.InboundShipment(
        inbound_id=s.inbound_id,
        seller_id=s.seller_id,
        warehouse_id=s.warehouse_id,
        state=catalog_pb2.InboundState.ValueType(int(s.state)),
        lines=[
            catalog_pb2.InboundLine(
                sku_id=line.sku_id,
                announced=line.announced,
                received=line.received,
                discrepancy=line.discrepancy if s.state == InboundState.RECEIVED else 0,
            )
            for line in s.lines
        ],
    )
    if s.announced_at is not None:
        message.announced_at.CopyFrom(timestamp(s.announced_at))
    if s.received_at is not None:
        message.received_at.CopyFrom(timestamp(s.received_at))
    return message


def categories_pb() -> list[catalog_pb2.Category]:
    return [
        catalog_pb2.Category(
            category_id=c.category_id,
            display_name=c.display_name,
            required_attributes=list(c.required_attributes),
        )
        for c in CATEGORIES.values()
    ]


def new_product(request: catalog_service_pb2.CreateProductRequest) -> NewProduct:
    return NewProduct(
        seller_id=request.seller_id,
        title=request.title,
        description=request.description,
        category_id=request.category_id,
        brand=request.brand,
        attributes=dict(request.attributes),
        skus=[
            NewSku(
                sku_code=s.sku_code,
                variant_attributes=dict(s.variant_attributes),
                price=money(s.price),
                stock=dict(s.stock),
            )
            for s in request.skus
        ],
        idempotency_key=request.idempotency_key,
    )
