"""The catalog's tables and the migrations that create them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
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

sellers = Table(
    "sellers",
    metadata,
    Column("seller_id", String(64), primary_key=True),
    Column("display_name", String(200), nullable=False),
    Column("country", String(2), nullable=False),
    Column("quality_tier", Integer, nullable=False),
    Column("registered_at", UtcDateTime(), nullable=False),
)

products = Table(
    "products",
    metadata,
    Column("product_id", String(64), primary_key=True),
    Column("seller_id", String(64), nullable=False, index=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("category_id", String(64), nullable=False),
    Column("brand", String(200), nullable=False),
    Column("attributes", JSON, nullable=False),
    Column("status", Integer, nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("currency", String(3), nullable=False),
    # Denormalised for search: the cheapest SKU and the units available over all SKUs.
    Column("min_price_minor", BigInteger, nullable=False),
    Column("available", BigInteger, nullable=False),
    # Lower-cased title, description and brand for text search.
    Column("search_text", Text, nullable=False),
    Column("idempotency_key", String(128), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("version", BigInteger, nullable=False),
    UniqueConstraint("seller_id", "idempotency_key", name="uq_products_seller_idempotency"),
    Index("ix_products_status_category", "status", "category_id", "min_price_minor"),
)

skus = Table(
    "skus",
    metadata,
    Column("sku_id", String(64), primary_key=True),
    Column("product_id", String(64), nullable=False, index=True),
    Column("sku_code", String(64), nullable=False),
    Column("variant_attributes", JSON, nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    UniqueConstraint("product_id", "sku_code", name="uq_skus_product_code"),
)

stock = Table(
    "stock",
    metadata,
    Column("sku_id", String(64), primary_key=True),
    Column("warehouse_id", String(64), primary_key=True),
    Column("on_hand", BigInteger, nullable=False),
    Column("reserved", BigInteger, nullable=False),
    # The database itself refuses an oversell, whatever the code above it does.
    CheckConstraint("reserved >= 0 AND on_hand >= reserved", name="ck_stock_never_oversold"),
)

# One row per order the reservation protocol has seen: the order's reservation state.
reservation_orders = Table(
    "reservation_orders",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("state", String(16), nullable=False),  # RESERVED REJECTED RELEASED COMMITTED
    Column("updated_at", UtcDateTime(), nullable=False),
)

reservations = Table(
    "reservations",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("line_id", String(64), primary_key=True),
    Column("sku_id", String(64), primary_key=True),
    Column("warehouse_id", String(64), primary_key=True),
    Column("quantity", BigInteger, nullable=False),
)

# Per order line outcomes from commerce events: the source of seller and listing quality.
order_outcomes = Table(
    "order_outcomes",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("line_id", String(64), primary_key=True),
    Column("seller_id", String(64), nullable=False),
    Column("product_id", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("placed_at", UtcDateTime(), nullable=False),
    Column("cancelled", Boolean, nullable=False, default=False),
    Column("shipped", Boolean, nullable=False, default=False),
    Column("shipped_late", Boolean, nullable=False, default=False),
    Column("refunded_quantity", Integer, nullable=False, default=0),
    Index("ix_outcomes_seller_time", "seller_id", "placed_at"),
    Index("ix_outcomes_product_time", "product_id", "placed_at"),
)


# --- fulfilment (migration 2) ---------------------------------------------------------------

# Warehouses routing knows: a region, and whether the platform runs it. Stock may name a
# warehouse never registered (a seller's own, no region).
warehouses = Table(
    "warehouses",
    metadata,
    Column("warehouse_id", String(64), primary_key=True),
    Column("display_name", String(200), nullable=False),
    Column("region", String(32), nullable=False),
    Column("platform", Boolean, nullable=False),
    Column("seller_id", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

# SKUs a seller enrolled in a platform warehouse: only those may be sent in.
fbt_enrolments = Table(
    "fbt_enrolments",
    metadata,
    Column("sku_id", String(64), primary_key=True),
    Column("warehouse_id", String(64), primary_key=True),
    Column("seller_id", String(64), nullable=False),
    Column("product_id", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

inbound_shipments = Table(
    "inbound_shipments",
    metadata,
    Column("inbound_id", String(64), primary_key=True),
    Column("seller_id", String(64), nullable=False),
    Column("warehouse_id", String(64), nullable=False),
    Column("state", Integer, nullable=False),  # shopstream.catalog.v1.InboundState
    Column("idempotency_key", String(128), nullable=False),
    Column("announced_at", UtcDateTime(), nullable=False),
    Column("received_at", UtcDateTime(), nullable=True),
    UniqueConstraint("seller_id", "idempotency_key", name="uq_inbound_seller_idempotency"),
    Index("ix_inbound_seller", "seller_id", "inbound_id"),
)

inbound_lines = Table(
    "inbound_lines",
    metadata,
    Column("inbound_id", String(64), primary_key=True),
    Column("sku_id", String(64), primary_key=True),
    Column("announced", BigInteger, nullable=False),
    Column("received", BigInteger, nullable=False),
)

# Inspections whose RESTOCK units went back on hand: each exactly once.
restocks = Table(
    "restocks",
    metadata,
    Column("inspection_id", String(200), primary_key=True),
    Column("order_id", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

# Packages that ended their journey (commerce.fulfilment.v1): delivery quality per seller.
package_outcomes = Table(
    "package_outcomes",
    metadata,
    Column("package_id", String(64), primary_key=True),
    Column("seller_id", String(64), nullable=False),
    Column("warehouse_id", String(64), nullable=False),
    Column("late", Boolean, nullable=False),
    Column("lost", Boolean, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Index("ix_package_outcomes_seller_time", "seller_id", "at"),
)

# Storage fees charged (migration 3): one row per seller, platform warehouse and currency per
# run; the latest period_end is where the next charge starts.
storage_charges = Table(
    "storage_charges",
    metadata,
    Column("charge_id", String(64), primary_key=True),
    Column("seller_id", String(64), nullable=False),
    Column("warehouse_id", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("period_start", UtcDateTime(), nullable=False),
    Column("period_end", UtcDateTime(), nullable=False),
    Column("units", BigInteger, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Index("ix_storage_charges_holder", "seller_id", "warehouse_id", "currency", "period_end"),
)

FULFILMENT_TABLES = [
    warehouses,
    fbt_enrolments,
    inbound_shipments,
    inbound_lines,
    restocks,
    package_outcomes,
]

MIGRATIONS = [
    create_tables(1, "catalog tables", metadata),
    # checkfirst: a fresh database already has them from version 1's create_all.
    Migration(
        2,
        "fulfilment: warehouses, enrolments, inbound shipments, restocks, package outcomes",
        lambda conn: metadata.create_all(conn, tables=FULFILMENT_TABLES),
    ),
    Migration(3, "storage fees", lambda conn: metadata.create_all(conn, tables=[storage_charges])),
]
