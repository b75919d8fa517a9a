"""Ads settings: env prefix SHOPSTREAM_ADS_ (nested with __, e.g. SHOPSTREAM_ADS_PRIVACY__K_THRESHOLD)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from shopstream_platform.settings import CombinerSettings, ServiceSettings


class AttributionSettings(BaseModel):
    """The attribution model. Its version string is derived from these, so every change of a
    window shows on the attributions it produces."""

    model: str = "last-touch-v1"
    click_window_s: int = Field(default=7 * 86_400, gt=0)
    view_window_s: int = Field(default=86_400, gt=0)
    # A paid order this soon after the click is not a person buying: the click is invalid.
    min_click_to_order_s: float = Field(default=3.0, ge=0)
    # Inputs of one buyer arrive on different topics, so their arrival order is not their event
    # order: a paid order waits this long after the worker read it (clicks take one more hop
    # than orders) when a click it names is not known yet, and a click whose impression has not
    # arrived waits up to this long for it.
    join_grace_s: float = Field(default=2.0, ge=0)
    # How often the combiner sends an idle partition an empty batch with its clock (a tick):
    # held inputs are released when a record's clock passes their due time, not by a timer of
    # the worker's, so a re-run after a crash releases them at the same point of the stream.
    tick_s: float = Field(default=0.1, gt=0)
    # Touchpoints remembered per buyer (newest kept); older ones age out of the windows anyway.
    max_touches_per_buyer: int = Field(default=200, ge=1)
    # Touches are kept this long at least (the longest window a campaign can choose, 28 days),
    # within `max_touches_per_buyer`.
    keep_touches_s: int = Field(default=28 * 86_400, gt=0)

    @property
    def version(self) -> str:
        return f"{self.model}/click={self.click_window_s}s/view={self.view_window_s}s"


class TrafficSettings(BaseModel):
    """Invalid-traffic rules: more clicks than this in the window is a burst."""

    burst_window_s: float = Field(default=60.0, gt=0)
    device_burst_limit: int = Field(default=20, ge=1)
    buyer_burst_limit: int = Field(default=20, ge=1)
    # Click ids remembered per install for the duplicate check.
    remembered_click_ids: int = Field(default=2_000, ge=1)


class PrivacySettings(BaseModel):
    """What reaches advertisers from attributed conversions (domain/privacy.py, docs/ads.md)."""

    # A conversion cell with fewer distinct buyers than this is withheld.
    k_threshold: int = Field(default=5, ge=1)
    # Epsilon one released conversion cell costs (half on the count, half on the GMV).
    epsilon_per_cell: float = Field(default=1.0, gt=0)
    # Per advertiser: epsilon per budget epoch, and over the advertiser's whole life.
    epsilon_epoch_budget: float = Field(default=60.0, gt=0)
    epsilon_lifetime_budget: float = Field(default=1_000.0, gt=0)
    epoch_days: int = Field(default=7, ge=1)
    # One conversion adds at most this to a GMV cell (clipped before summing): the GMV sensitivity.
    gmv_clip_minor: int = Field(default=100_000, gt=0)
    # A day's conversion cells are released this long after the UTC day ended (late credits,
    # withdrawals and the join grace settle first).
    release_delay_s: float = Field(default=3_600.0, ge=0)
    # Principals ("role:id") that read exact numbers: the platform's audit. Only admin and
    # service roles may be named (the platform has no separate audit role).
    audit_principals: list[str] = ["service:audit", "admin:audit"]

    @field_validator("audit_principals")
    @classmethod
    def _internal_only(cls, value: list[str]) -> list[str]:
        for p in value:
            role, _, ident = p.partition(":")
            if role not in ("admin", "service") or not ident:
                raise ValueError(f"audit principal {p!r} must be admin:<id> or service:<id>")
        return value

    @model_validator(mode="after")
    def _a_cell_fits_the_epoch(self) -> PrivacySettings:
        if self.epsilon_per_cell > self.epsilon_epoch_budget:
            raise ValueError("epsilon_per_cell must fit in epsilon_epoch_budget")
        return self


class AdsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SHOPSTREAM_ADS_", env_nested_delimiter="__")

    service_name: str = "ads"
    database_url: str = "sqlite+aiosqlite:///.run/db/ads.db"
    store: Literal["rocksdb", "memory"] = "rocksdb"
    data_dir: Path = Path(".run/faust")
    faust_app_id: str = "ads"
    # Auctions compare bids in one currency: every campaign bids in the marketplace currency.
    currency: str = "USD"
    # The lowest price a winner pays (minor units per click, or per 1,000 impressions).
    reserve_price_minor: int = Field(default=1, ge=1)
    # Predicted click rate before a campaign has its own history: prior clicks / impressions.
    prior_ctr: float = Field(default=0.02, gt=0, le=1)
    prior_impressions: int = Field(default=100, ge=1)
    max_slots: int = Field(default=10, ge=1)
    list_default_page_size: int = Field(default=20, ge=1)
    list_max_page_size: int = Field(default=100, ge=1)
    attribution: AttributionSettings = AttributionSettings()
    traffic: TrafficSettings = TrafficSettings()
    privacy: PrivacySettings = PrivacySettings()
    # Changed device and buyer states kept before a flush between offset commits: bounds the
    # memory they hold and the pause of the next commit.
    max_dirty_keys: int = Field(default=10_000, ge=1)
    # Offset commits of the worker, and so state writes: a buyer's state (up to 200 touches,
    # ~16 KB) changed by every batch is written once per interval; a restart replays up to it.
    commit_interval_s: float = Field(default=2.8, gt=0)
    # The combiner process in front of the attribution worker (stream/combiner.py).
    combiner: CombinerSettings = CombinerSettings()
