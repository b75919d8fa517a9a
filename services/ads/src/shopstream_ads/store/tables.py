"""Ads' tables and the migrations that create them (campaigns and the privacy budget ledger).

Traffic, spend and attribution state live in the attribution worker's Faust tables, not here:
the database holds what advertisers change through the API, and what must survive exactly.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    inspect,
    text,
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
    # [click window, view window, engaged-view ms] (domain AttributionChoice); NULL: defaults.
    Column("attribution", Text, nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    UniqueConstraint("advertiser_id", "request_id", name="uq_ads_campaign_request"),
    Index("ix_ads_campaigns_advertiser", "advertiser_id", "campaign_id"),
)

# Version 1's daily epsilon ledger; unused since version 2 (epoch budgets), kept for history.
privacy_spend = Table(
    "ads_privacy_spend",
    metadata,
    Column("advertiser_id", String(64), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("epsilon_spent", Float, nullable=False),
    Column("queries", Integer, nullable=False),
)

# --- version 2: released conversion cells (docs/ads.md, domain/privacy.py) ---------------------
# Its own MetaData: migration 1 creates `metadata` as it was, this one only the new tables.
released_metadata = MetaData()

# One row per campaign and attributed order, from ads.attributions.v1: the order's day, its
# buyer, how many credits it holds (credits minus withdrawals: 1 when credited) and its net value
# (paid minus refunds). Released cells are built from these rows, each order clipped on its own.
conversions = Table(
    "ads_conversions",
    released_metadata,
    Column("campaign_id", String(64), primary_key=True),
    Column("order_id", String(128), primary_key=True),
    Column("advertiser_id", String(64), nullable=False),
    Column("day", String(10), nullable=False),
    Column("buyer_id", String(128), nullable=False),
    Column("credits", Integer, nullable=False),
    Column("net_minor", BigInteger, nullable=False),
    Index("ix_ads_conversions_cell", "campaign_id", "day"),
)

# A conversion cell as released in a budget epoch: drawn once, returned for the rest of it.
releases = Table(
    "ads_releases",
    released_metadata,
    Column("campaign_id", String(64), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("epoch", Integer, primary_key=True),
    Column("advertiser_id", String(64), nullable=False),
    # NULL: withheld (fewer than k buyers).
    Column("conversions", BigInteger, nullable=True),
    Column("gmv_minor", BigInteger, nullable=True),
    Column("micro_epsilon", BigInteger, nullable=False),
    Column("released_at", UtcDateTime(), nullable=False),
)

# Micro-epsilon an advertiser spent per budget epoch; the lifetime spend is their sum.
privacy_budget = Table(
    "ads_privacy_budget",
    released_metadata,
    Column("advertiser_id", String(64), primary_key=True),
    Column("epoch", Integer, primary_key=True),
    Column("micro_epsilon", BigInteger, nullable=False),
    Column("cells", Integer, nullable=False),
)

# --- version 3: invalid clicks per campaign, click day and reason (ads.invalid-traffic.v1) -----
ivt_metadata = MetaData()

invalid_clicks = Table(
    "ads_invalid_clicks",
    ivt_metadata,
    Column("campaign_id", String(64), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("reason", Integer, primary_key=True),
    Column("clicks", BigInteger, nullable=False),
    # Of them, clicks billed before they were flagged (their charge reversed).
    Column("reversed", BigInteger, nullable=False),
)


# A fresh database has the column from version 1's create_all; an older one gets it here.
def _add_attribution_column(conn: Connection) -> None:
    columns = {c["name"] for c in inspect(conn).get_columns("ads_campaigns")}
    if "attribution" not in columns:
        conn.execute(text("ALTER TABLE ads_campaigns ADD COLUMN attribution TEXT"))


MIGRATIONS: list[Migration] = [
    create_tables(1, "ads campaigns and privacy budget", metadata),
    Migration(
        2,
        "released conversion cells, per-order conversions, epoch budgets",
        lambda conn: released_metadata.create_all(conn),
    ),
    Migration(3, "invalid clicks per campaign day", lambda conn: ivt_metadata.create_all(conn)),
    Migration(4, "campaigns' attribution choices", _add_attribution_column),
]
