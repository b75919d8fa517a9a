"""The catalog's data shapes as the domain sees them (persistence and gRPC convert to these)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class ListingStatus(enum.IntEnum):
    """Numbers equal shopstream.catalog.v1.ListingStatus."""

    PENDING_REVIEW = 1
    ACTIVE = 2
    REJECTED = 3
    SUPPRESSED = 4


class QualityTier(enum.IntEnum):
    """Numbers equal shopstream.catalog.v1.QualityTier."""

    NEW = 1
    EXCELLENT = 2
    GOOD = 3
    FAIR = 4
    POOR = 5


@dataclass(frozen=True)
class Money:
    amount_minor: int
    currency: str


@dataclass(frozen=True)
class Reason:
    """Why a listing has its status; `code` is stable for programs, `message` is for people."""

    code: str
    message: str


@dataclass(frozen=True)
class Category:
    category_id: str
    display_name: str
    required_attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Seller:
    seller_id: str
    display_name: str
    country: str
    quality_tier: QualityTier
    registered_at: datetime


@dataclass(frozen=True)
class NewSku:
    sku_code: str
    variant_attributes: dict[str, str]
    price: Money
    stock: dict[str, int]


@dataclass(frozen=True)
class NewProduct:
    seller_id: str
    title: str
    description: str
    category_id: str
    brand: str
    attributes: dict[str, str]
    skus: list[NewSku]
    idempotency_key: str = ""


@dataclass(frozen=True)
class StockView:
    warehouse_id: str
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True)
class SkuView:
    sku_id: str
    sku_code: str
    variant_attributes: dict[str, str]
    price: Money
    stock: list[StockView] = field(default_factory=list)

    @property
    def available(self) -> int:
        return sum(s.available for s in self.stock)


@dataclass(frozen=True)
class ProductView:
    product_id: str
    seller_id: str
    title: str
    description: str
    category_id: str
    brand: str
    attributes: dict[str, str]
    status: ListingStatus
    reasons: list[Reason]
    created_at: datetime
    updated_at: datetime
    version: int
    skus: list[SkuView]


@dataclass(frozen=True)
class QualityStats:
    """A seller's outcomes over the rolling window."""

    orders: int
    refunded: int
    cancelled: int
    shipped: int
    shipped_late: int
    # Packages that ended their journey (delivered or lost), late ones, lost ones.
    packages: int = 0
    late_packages: int = 0
    lost_packages: int = 0

    def _rate(self, part: int, whole: int) -> float:
        return part / whole if whole else 0.0

    @property
    def refund_rate(self) -> float:
        return self._rate(self.refunded, self.orders)

    @property
    def cancellation_rate(self) -> float:
        return self._rate(self.cancelled, self.orders)

    @property
    def late_shipment_rate(self) -> float:
        return self._rate(self.shipped_late, self.shipped)

    @property
    def late_delivery_rate(self) -> float:
        return self._rate(self.late_packages, self.packages)

    @property
    def lost_parcel_rate(self) -> float:
        return self._rate(self.lost_packages, self.packages)
