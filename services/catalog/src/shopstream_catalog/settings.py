"""Catalog settings: env prefix SHOPSTREAM_CATALOG_, quality thresholds included."""

from __future__ import annotations

from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict

from shopstream_platform.settings import ServiceSettings

DEFAULT_BANNED_TERMS = [
    "replica",
    "counterfeit",
    "knockoff",
    "knock-off",
    "fake",
    "1:1 copy",
    "aaa quality",
    "unbranded designer",
]


class ListingRules(BaseModel):
    """Rules applied to a listing on create and update."""

    banned_terms: list[str] = Field(default_factory=lambda: list(DEFAULT_BANNED_TERMS))
    # Cheapest SKU below this fraction of the category median price → held for review.
    min_price_ratio_to_median: float = Field(default=0.3, gt=0, lt=1)
    # The median is only trusted with at least this many active listings in the category.
    median_min_listings: int = Field(default=5, ge=1)
    # A seller's first N listings are held for review.
    new_seller_review_count: int = Field(default=3, ge=0)


class QualityThresholds(BaseModel):
    """Seller tiers and automatic suppression, from commerce events over a rolling window."""

    window_days: int = Field(default=30, ge=1)
    # Below this many orders in the window a seller is NEW (no tier judged).
    min_orders_for_tier: int = Field(default=10, ge=1)
    poor_refund_rate: float = 0.15
    poor_cancellation_rate: float = 0.10
    poor_late_shipment_rate: float = 0.20
    fair_refund_rate: float = 0.08
    fair_cancellation_rate: float = 0.05
    fair_late_shipment_rate: float = 0.10
    # Delivery quality from commerce's packages, judged once this many ended their journey.
    min_packages_for_rates: int = Field(default=10, ge=1)
    poor_late_delivery_rate: float = 0.20
    fair_late_delivery_rate: float = 0.10
    poor_lost_parcel_rate: float = 0.05
    fair_lost_parcel_rate: float = 0.02
    excellent_max_rate: float = 0.02
    # A listing whose refund rate reaches this after min_orders is SUPPRESSED.
    suppress_refund_rate: float = Field(default=0.3, gt=0, le=1)
    suppress_min_orders: int = Field(default=10, ge=1)


class CatalogSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SHOPSTREAM_CATALOG_", env_nested_delimiter="__")

    service_name: str = "catalog"
    database_url: str = "sqlite+aiosqlite:///.run/db/catalog.db"
    listing: ListingRules = ListingRules()
    quality: QualityThresholds = QualityThresholds()
    search_default_page_size: int = Field(default=20, ge=1)
    search_max_page_size: int = Field(default=100, ge=1)
    product_cache_size: int = Field(default=50_000, ge=0)
    # Storage fees for units in platform warehouses: per unit and day, in the SKU's currency's
    # minor units, charged every `storage_charge_interval_s` for the period since the last charge.
    storage_fee_per_unit_day_minor: int = Field(default=2, ge=0, le=1_000_000)
    storage_charge_interval_s: float = Field(default=86_400.0, gt=0)
