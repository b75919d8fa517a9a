"""Commerce settings: env prefix SHOPSTREAM_COMMERCE_."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shopstream_platform.settings import ServiceSettings


class CommerceSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SHOPSTREAM_COMMERCE_", env_nested_delimiter="__")

    service_name: str = "commerce"
    database_url: str = "sqlite+aiosqlite:///.run/db/commerce.db"
    # An unpaid RESERVED order expires after this and its stock is released.
    payment_window_s: float = Field(default=900.0, gt=0)
    # Sellers promise to ship within this after payment; later counts as a late shipment.
    ship_within_s: float = Field(default=2 * 86_400.0, gt=0)
    # Commissions settle (pending → available) this long after delivery.
    return_window_s: float = Field(default=14 * 86_400.0, ge=0)
    # A seller who leaves a buyer's after-sales request (refund, return, cancellation)
    # unanswered this long has it approved by the platform, as TikTok Shop does.
    seller_response_window_s: float = Field(default=2 * 86_400.0, gt=0)
    # A lowered commission rate applies only to orders placed this long after the change.
    rate_cut_notice_s: float = Field(default=30 * 86_400.0, ge=0)
    # creator-score flags that freeze a creator's commission at settlement (risk control).
    risk_flags: list[str] = Field(default_factory=lambda: ["FOLLOWER_SPIKE_WITHOUT_ENGAGEMENT"])
    # How far ahead a live session may be scheduled (TikTok Shop: at least 30 minutes).
    live_schedule_min_lead_s: float = Field(default=1_800.0, ge=0)
    live_schedule_max_lead_s: float = Field(default=30 * 86_400.0, gt=0)
    # The platform's fee on each paid order (seller settlements), in basis points.
    platform_fee_bps: int = Field(default=500, ge=0, le=10_000)
    default_commission_bps: int = Field(default=0, ge=0, le=5_000)
    max_commission_bps: int = Field(default=5_000, ge=0, le=10_000)
    max_lines_per_order: int = Field(default=50, ge=1)
    max_quantity_per_line: int = Field(default=1_000, ge=1)
    # How often the expiry and settlement sweeps run.
    sweep_interval_s: float = Field(default=1.0, gt=0)
    # The sandbox payment provider's simulated answer time and time-out.
    payment_timeout_s: float = Field(default=5.0, gt=0)
    # A payment intent still open this long after its last news (never less than the time-out)
    # is resolved by the sweeper asking the provider by idempotency key.
    payment_resolve_after_s: float = Field(default=10.0, gt=0)
    # The sandbox provider: how long `tok_slow...` cards take to answer after charging, and an
    # optional file for its records (charges and refunds survive a crash of commerce).
    sandbox_slow_s: float = Field(default=1.0, ge=0)
    # ... and how long a `tok_stuck...` request stays in its network before it reaches it (and
    # charges, unless the sweeper cancelled the intent meanwhile).
    sandbox_stuck_s: float = Field(default=30.0, ge=0)
    sandbox_ledger_path: str = ""
    # The day-end check: how long catalog may take to release or commit an ended order's stock
    # (and the provider to confirm a refund) before it counts as a leak, and how often it runs.
    leak_grace_s: float = Field(default=60.0, ge=0)
    leak_check_interval_s: float = Field(default=60.0, gt=0)
    # Fulfilment: the delivery promised to buyers once a package ships (sellers' own carriers),
    # and the platform's fees for packages it fulfils (per package plus per unit, in the
    # order's currency's minor units).
    delivery_promise_s: float = Field(default=3 * 86_400.0, gt=0)
    fbt_fee_per_package_minor: int = Field(default=100, ge=0, le=1_000_000)
    fbt_fee_per_unit_minor: int = Field(default=50, ge=0, le=1_000_000)
    # The sandbox carrier (fulfilment/carrier.py): pick-up and transit times, its promise, how
    # late a late parcel is, and the shares of lost and late parcels.
    carrier_pickup_s: float = Field(default=3_600.0, ge=0)
    carrier_transit_s: float = Field(default=2 * 86_400.0, ge=0)
    carrier_promise_s: float = Field(default=3 * 86_400.0, gt=0)
    carrier_late_by_s: float = Field(default=2 * 86_400.0, gt=0)
    carrier_lost_share: float = Field(default=0.005, ge=0, le=1)
    carrier_late_share: float = Field(default=0.05, ge=0, le=1)
    # The CloudEvents source of the catalog whose stock answers count (e.g. "shopstream/catalog");
    # empty: any. Deployments sharing a broker (tests, a local stack) set it.
    catalog_source: str = ""
    list_default_page_size: int = Field(default=20, ge=1)
    list_max_page_size: int = Field(default=100, ge=1)
