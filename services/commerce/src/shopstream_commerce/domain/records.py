"""Commerce's records as the use cases see them (the store builds them, convert.py publishes them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from shopstream_commerce.domain.after_sales import AfterSaleType, RequestState
from shopstream_commerce.domain.orders import OrderState


@dataclass(frozen=True)
class Attribution:
    creator_id: str = ""
    live_session_id: str = ""
    video_id: str = ""
    ad_click_id: str = ""


@dataclass(frozen=True)
class Line:
    line_id: str
    sku_id: str
    product_id: str
    seller_id: str
    quantity: int
    unit_price_minor: int
    currency: str
    attribution: Attribution
    refunded_quantity: int = 0
    commission_bps: int = 0
    category_id: str = ""
    flash_sale_id: str = ""

    @property
    def total_minor(self) -> int:
        return self.unit_price_minor * self.quantity


@dataclass(frozen=True)
class OrderRecord:
    order_id: str
    buyer_id: str
    seller_id: str
    state: OrderState
    lines: list[Line]
    total_minor: int
    currency: str
    tracking_consent: bool
    placed_at: datetime
    updated_at: datetime
    version: int
    expires_at: datetime | None = None
    rejection_reason: str = ""
    rejected_sku_id: str = ""
    payment_id: str = ""
    tracking_number: str = ""
    ship_by: datetime | None = None
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    ship_to_region: str = ""


@dataclass(frozen=True)
class SkuInfo:
    sku_id: str
    product_id: str
    seller_id: str
    price_minor: int
    currency: str
    listing_status: int
    category_id: str = ""


@dataclass(frozen=True)
class RefundRecord:
    """An after-sales request (refund, return and refund, cancel); domain/after_sales.py."""

    refund_id: str
    order_id: str
    state: RequestState
    lines: dict[str, int]
    amount_minor: int
    currency: str
    reason: str
    kind: AfterSaleType = AfterSaleType.REFUND
    reject_reason: int = 0  # shopstream.commerce.v1.RejectReason
    reject_note: str = ""
    return_tracking: str = ""
    escalation_note: str = ""
    # When the seller's time to answer a REQUESTED request ends (None: requests made before
    # the response window existed, never approved automatically).
    respond_by: datetime | None = None
    auto_approved: bool = False  # approved by the platform: the seller did not answer in time


@dataclass(frozen=True)
class LiveProductRecord:
    product_id: str
    orders: int
    units: int
    gmv_minor: int


@dataclass(frozen=True)
class LiveRecord:
    live_session_id: str
    creator_id: str
    title: str
    state: int
    started_at: datetime
    ended_at: datetime | None
    current_viewers: int
    peak_viewers: int
    total_views: int
    orders: int
    gmv_minor: int
    currency: str
    pinned: list[str] = field(default_factory=list)
    # Largest GMV first.
    products: list[LiveProductRecord] = field(default_factory=list)
    scheduled_for: datetime | None = None


@dataclass(frozen=True)
class LedgerRecord:
    entry_id: str
    creator_id: str
    kind: int
    account: int
    amount_minor: int
    currency: str
    order_id: str
    line_id: str
    product_id: str
    rate_bps: int
    created_at: datetime
    frozen_reason: str = ""
