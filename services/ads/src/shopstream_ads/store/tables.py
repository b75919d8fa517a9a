"""Ads' tables and the migrations that create them (campaigns and the privacy budget ledger).

Traffic, spend and attribution state live in the attribution worker's Faust tables, not here:
the database holds what advertisers change through the API, and what must survive exactly.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from shopstream_platform.db.migrations import Migration, create_tables
from shopstream_platform.db.types import UtcDateTime

metadata = MetaData()

campaigns = Table(
    "ads_campaigns",
    metadata,
    Column("campaign_id", String(64), primary_key=True),
    Column("advertiser_id", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    # JSON arrays of ids.
    Column("promoted_product_ids", Text, nullable=False),
    Column("promoted_creator_ids", Text, nullable=False),
    Column("placements", Text, nullable=False),
    Column("bid_type", Integer, nullable=False),
    Column("bid_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("daily_budget_minor", BigInteger, nullable=False),
    Column("total_budget_minor", BigInteger, nullable=False),
    Column("starts_at", UtcDateTime(), nullable=False),
    Column("ends_at", UtcDateTime(), nullable=True),
    Column("paused", Boolean, nullable=False),
    # The advertiser's idempotency key of the CreateCampaign request.
    Column("request_id", String(128), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    UniqueConstraint("advertiser_id", "request_id", name="uq_ads_campaign_request"),
    Index("ix_ads_campaigns_advertiser", "advertiser_id", "campaign_id"),
)

# Epsilon spent by noised report queries, per advertiser and UTC day.
privacy_spend = Table(
    "ads_privacy_spend",
    metadata,
    Column("advertiser_id", String(64), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("epsilon_spent", Float, nullable=False),
    Column("queries", Integer, nullable=False),
)

MIGRATIONS: list[Migration] = [create_tables(1, "ads campaigns and privacy budget", metadata)]
