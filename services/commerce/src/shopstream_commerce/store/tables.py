"""Commerce's tables and the migrations that create them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    inspect,
    text,
)
from sqlalchemy.engine import Connection

from shopstream_platform.db.migrations import Migration, create_tables
from shopstream_platform.db.types import UtcDateTime

metadata = MetaData()
_Id = BigInteger().with_variant(Integer(), "sqlite")

# Catalog's SKUs as commerce last heard of them (catalog.products.v1): PlaceOrder prices from here,
# never from the caller and without a network call per order.
catalog_skus = Table(
    "catalog_skus",
    metadata,
    Column("sku_id", String(64), primary_key=True),
    Column("product_id", String(64), nullable=False, index=True),
    Column("seller_id", String(64), nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("listing_status", Integer, nullable=False),
    # Added by migration 2.
    Column("category_id", String(64), nullable=False, server_default=""),
    Column("product_version", BigInteger, nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("buyer_id", String(64), nullable=False),
    Column("seller_id", String(64), nullable=False),
    Column("idempotency_key", String(128), nullable=False),
    Column("state", Integer, nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("tracking_consent", Boolean, nullable=False),
    Column("placed_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("rejection_reason", String(500), nullable=False, default=""),
    Column("rejected_sku_id", String(64), nullable=False, default=""),
    Column("payment_id", String(64), nullable=False, default=""),
    Column("paid_at", UtcDateTime(), nullable=True),
    Column("tracking_number", String(128), nullable=False, default=""),
    Column("ship_by", UtcDateTime(), nullable=True),
    Column("shipped_at", UtcDateTime(), nullable=True),
    Column("delivered_at", UtcDateTime(), nullable=True),
    Column("settled", Boolean, nullable=False, default=False),
    # Added by migration 4: catalog's hold on the order's stock (domain.leaks.Reservation), as
    # heard on catalog.stock.v1, for the day-end check.
    Column("reservation", Integer, nullable=False, server_default="0"),
    Column("reservation_at", UtcDateTime(), nullable=True),
    # Added by migration 13: where the buyer wants it delivered (catalog routes by it).
    Column("ship_to_region", String(32), nullable=False, server_default=""),
    UniqueConstraint("buyer_id", "idempotency_key", name="uq_orders_buyer_idempotency"),
    Index("ix_orders_reservation", "reservation", "state"),
    Index("ix_orders_state_expiry", "state", "expires_at"),
    Index("ix_orders_buyer", "buyer_id", "order_id"),
    Index("ix_orders_seller", "seller_id", "order_id"),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("line_id", String(64), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("sku_id", String(64), nullable=False),
    Column("product_id", String(64), nullable=False),
    Column("seller_id", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("creator_id", String(64), nullable=False, default=""),
    Column("live_session_id", String(64), nullable=False, default=""),
    Column("video_id", String(64), nullable=False, default=""),
    Column("ad_click_id", String(128), nullable=False, default=""),
    Column("refunded_quantity", Integer, nullable=False, default=0),
    # Commission rate fixed when the order was placed (the rate in force for that moment).
    Column("commission_bps", Integer, nullable=False, default=0),
    # Added by migration 2.
    Column("category_id", String(64), nullable=False, server_default=""),
    # Added by migration 9: the flash sale whose deal price and units the line took.
    Column("flash_sale_id", String(64), nullable=False, server_default=""),
    CheckConstraint(
        "refunded_quantity >= 0 AND refunded_quantity <= quantity", name="ck_lines_refund_range"
    ),
)

# Flash deals in live sessions (migration 9). `sold` only grows under its CHECK, by a
# conditional update, so concurrent orders can never claim more than `total` units.
flash_sales = Table(
    "flash_sales",
    metadata,
    Column("flash_sale_id", String(64), primary_key=True),
    Column("live_session_id", String(64), nullable=False),
    Column("seller_id", String(64), nullable=False),
    Column("product_id", String(64), nullable=False),
    Column("sku_id", String(64), nullable=False),
    Column("deal_price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("total", Integer, nullable=False),
    Column("sold", Integer, nullable=False),
    Column("per_buyer", Integer, nullable=False),
    Column("starts_at", UtcDateTime(), nullable=False),
    Column("ends_at", UtcDateTime(), nullable=False),
    CheckConstraint("sold >= 0 AND sold <= total", name="ck_flash_sold_range"),
    Index("ix_flash_sales_session_sku", "live_session_id", "sku_id"),
)

# Units each buyer holds in a flash sale (never above its per-buyer limit).
flash_claims = Table(
    "flash_claims",
    metadata,
    Column("flash_sale_id", String(64), primary_key=True),
    Column("buyer_id", String(64), primary_key=True),
    Column("units", Integer, nullable=False),
    CheckConstraint("units >= 0", name="ck_flash_claim_units"),
)

payments = Table(
    "payments",
    metadata,
    Column("attempt_id", String(64), primary_key=True),
    Column("payment_id", String(64), nullable=False),
    Column("order_id", String(64), nullable=False, index=True),
    Column("status", Integer, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("message", String(500), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

refunds = Table(
    "refunds",
    metadata,
    Column("refund_id", String(64), primary_key=True),
    Column("order_id", String(64), nullable=False, index=True),
    Column("state", Integer, nullable=False),  # shopstream.commerce.v1.RefundState
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("requested_at", UtcDateTime(), nullable=False),
    Column("approved_at", UtcDateTime(), nullable=True),
    # Added by migration 5 (after-sales): domain.after_sales.AfterSaleType, the rejection's
    # RejectReason and words, the return's tracking number, the escalation's words.
    Column("kind", Integer, nullable=False, server_default="1"),
    Column("reject_reason", Integer, nullable=False, server_default="0"),
    Column("reject_note", String(500), nullable=False, server_default=""),
    Column("return_tracking", String(128), nullable=False, server_default=""),
    Column("escalation_note", String(500), nullable=False, server_default=""),
    Column("updated_at", UtcDateTime(), nullable=True),
    # Added by migration 15: the seller's answer deadline (NULL for older requests) and whether
    # the platform approved the request because the seller let it pass.
    Column("respond_by", UtcDateTime(), nullable=True),
    Column("auto_approved", Boolean, nullable=False, server_default=text("false")),
    Index("ix_refunds_unanswered", "state", "respond_by"),
)

refund_lines = Table(
    "refund_lines",
    metadata,
    Column("refund_id", String(64), primary_key=True),
    Column("line_id", String(64), primary_key=True),
    Column("quantity", Integer, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
)

live_sessions = Table(
    "live_sessions",
    metadata,
    Column("live_session_id", String(64), primary_key=True),
    Column("creator_id", String(64), nullable=False, index=True),
    Column("title", String(200), nullable=False),
    Column("state", Integer, nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("ended_at", UtcDateTime(), nullable=True),
    Column("current_viewers", BigInteger, nullable=False, default=0),
    Column("peak_viewers", BigInteger, nullable=False, default=0),
    Column("total_views", BigInteger, nullable=False, default=0),
    Column("orders", BigInteger, nullable=False, default=0),
    Column("gmv_minor", BigInteger, nullable=False, default=0),
    Column("currency", String(3), nullable=False, default=""),
    # Added by migration 11: when a scheduled session was announced to start.
    Column("scheduled_for", UtcDateTime(), nullable=True),
)

# A live session's sales per product (migration 10).
live_product_stats = Table(
    "live_product_stats",
    metadata,
    Column("live_session_id", String(64), primary_key=True),
    Column("product_id", String(64), primary_key=True),
    Column("orders", BigInteger, nullable=False),
    Column("units", BigInteger, nullable=False),
    Column("gmv_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
)

live_pins = Table(
    "live_pins",
    metadata,
    Column("live_session_id", String(64), primary_key=True),
    Column("product_id", String(64), primary_key=True),
    Column("pinned_at", UtcDateTime(), nullable=False),
)

commission_rates = Table(
    "commission_rates",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("seller_id", String(64), nullable=False),
    Column("product_id", String(64), nullable=False, index=True),
    Column("rate_bps", Integer, nullable=False),
    Column("set_at", UtcDateTime(), nullable=False),
    Column("effective_from", UtcDateTime(), nullable=False),
    # A later change replaced this one before it took effect.
    Column("superseded", Boolean, nullable=False, default=False),
    # Added by migration 7: a targeted rate's creator ("" the open rate); the Shop Ads rate.
    Column("creator_id", String(64), nullable=False, server_default=""),
    Column("shop_ads", Boolean, nullable=False, server_default=text("false")),
    # Added by migration 12: the open rate needs the seller's approval of each creator.
    Column("require_approval", Boolean, nullable=False, server_default=text("false")),
)

# Creators a seller approved for a product (migration 12).
approved_creators = Table(
    "approved_creators",
    metadata,
    Column("product_id", String(64), primary_key=True),
    Column("creator_id", String(64), primary_key=True),
    Column("approved_at", UtcDateTime(), nullable=False),
)

# Rates kept by creators who promoted a product when its rate was cut (migration 7).
commission_locks = Table(
    "commission_locks",
    metadata,
    Column("product_id", String(64), primary_key=True),
    Column("creator_id", String(64), primary_key=True),
    Column("rate_bps", Integer, nullable=False),
    Column("locked_until", UtcDateTime(), nullable=False),
    Column("set_at", UtcDateTime(), nullable=False),
)

# The commission ledger: insert-only. dedup_key makes every entry's cause produce it once.
ledger = Table(
    "ledger",
    metadata,
    Column("entry_id", String(64), primary_key=True),
    Column("creator_id", String(64), nullable=False),
    Column("kind", Integer, nullable=False),
    Column("account", Integer, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("line_id", String(64), nullable=False),
    Column("product_id", String(64), nullable=False),
    Column("rate_bps", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("dedup_key", String(200), nullable=False, unique=True),
    # Added by migration 8: why a FROZEN entry was held.
    Column("frozen_reason", String(200), nullable=False, server_default=""),
    # Entry ids are time-ordered, so (creator, entry id) pages through a creator's history.
    Index("ix_ledger_creator_entry", "creator_id", "entry_id"),
)

# Risk signals heard from other services (migration 8): each creator's latest flags
# (creators.scores.v1) and the ad clicks flagged as invalid traffic (ads.invalid-traffic.v1).
risk_creators = Table(
    "risk_creators",
    metadata,
    Column("creator_id", String(64), primary_key=True),
    Column("flags", String(500), nullable=False),  # comma-separated
    Column("as_of", UtcDateTime(), nullable=False),
)

flagged_clicks = Table(
    "flagged_clicks",
    metadata,
    Column("click_id", String(128), primary_key=True),
    Column("reason", String(64), nullable=False),
    Column("flagged_at", UtcDateTime(), nullable=False),
)


# The sellers' ledger (migration 6): insert-only like the creators' (`ledger`); dedup_key makes
# every entry's cause produce it once. A seller's balance is the sum of their entries.
seller_ledger = Table(
    "seller_ledger",
    metadata,
    Column("entry_id", String(64), primary_key=True),
    Column("seller_id", String(64), nullable=False),
    Column("order_id", String(64), nullable=False, index=True),
    Column("kind", Integer, nullable=False),  # domain.settlements.EntryKind
    Column("account", Integer, nullable=False),  # shopstream.commerce.v1.LedgerAccount
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("refund_id", String(64), nullable=False, default=""),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("dedup_key", String(200), nullable=False, unique=True),
    Index("ix_seller_ledger_seller_entry", "seller_id", "entry_id"),
)


# Packages (migration 13, domain/packages.py): one per warehouse an order's stock was reserved
# in, created from catalog's StockReserved; the unique (order, warehouse) makes a replayed answer
# create nothing twice.
packages = Table(
    "packages",
    metadata,
    Column("package_id", String(64), primary_key=True),
    Column("order_id", String(64), nullable=False),
    Column("seller_id", String(64), nullable=False),
    Column("warehouse_id", String(64), nullable=False),
    Column("fulfilled_by_platform", Boolean, nullable=False),
    Column("state", Integer, nullable=False),  # domain.packages.PackageState
    Column("carrier", String(32), nullable=False, default=""),
    Column("tracking_number", String(128), nullable=False, default=""),
    Column("label", String(200), nullable=False, default=""),
    Column("ship_by", UtcDateTime(), nullable=True),
    Column("shipped_at", UtcDateTime(), nullable=True),
    Column("deliver_by", UtcDateTime(), nullable=True),
    Column("delivered_at", UtcDateTime(), nullable=True),
    Column("lost_at", UtcDateTime(), nullable=True),
    Column("late", Boolean, nullable=False, default=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("version", Integer, nullable=False, default=1),
    # Added by migration 14: when the carrier was last asked about it (the sweep asks the least
    # recently asked first, so no package waits behind others with no news).
    Column("tracked_at", UtcDateTime(), nullable=True),
    UniqueConstraint("order_id", "warehouse_id", name="uq_packages_order_warehouse"),
    Index("ix_packages_state", "state", "fulfilled_by_platform"),
    Index("ix_packages_seller", "seller_id", "package_id"),
)

package_lines = Table(
    "package_lines",
    metadata,
    Column("package_id", String(64), primary_key=True),
    Column("line_id", String(64), primary_key=True),
    Column("sku_id", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
)


# Payment intents (migration 3): committed before the provider is called, completed by its answer
# or by the sweeper asking the provider by idempotency key. `holder` is the order id while the
# intent holds the order's one slot (domain/payments.py HOLDS_ORDER), NULL once it frees it: the
# unique index makes a second concurrent charge of one order impossible.
payment_intents = Table(
    "payment_intents",
    metadata,
    Column("intent_id", String(64), primary_key=True),
    Column("order_id", String(64), nullable=False, index=True),
    Column("buyer_id", String(64), nullable=False),
    Column("idempotency_key", String(160), nullable=False, unique=True),
    Column("holder", String(64), nullable=True, unique=True),
    Column("state", Integer, nullable=False),  # domain.payments.IntentState
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("payment_id", String(64), nullable=False, default=""),
    Column("message", String(500), nullable=False, default=""),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("checks", Integer, nullable=False, default=0),
    Index("ix_payment_intents_state", "state", "updated_at"),
)

# Money to give back at the provider (migration 3): written in the transaction that decides the
# refund, sent after it commits, retried by the sweeper until the provider confirms.
provider_refunds = Table(
    "provider_refunds",
    metadata,
    Column("refund_key", String(200), primary_key=True),  # the provider's idempotency key
    Column("order_id", String(64), nullable=False, index=True),
    Column("buyer_id", String(64), nullable=False),
    Column("payment_id", String(64), nullable=False),
    Column("intent_id", String(64), nullable=False, default=""),
    Column("refund_id", String(64), nullable=False, default=""),  # commerce's refund, if any
    Column("cause", Integer, nullable=False),  # shopstream.commerce.v1.RefundCause
    Column("state", Integer, nullable=False),  # 1 pending, 2 done, 3 refused by the provider
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("provider_refund_id", String(64), nullable=False, default=""),
    Column("message", String(500), nullable=False, default=""),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("completed_at", UtcDateTime(), nullable=True),
    Index("ix_provider_refunds_state", "state", "created_at"),
)


# A fresh database gets every column from version 1's create_all, so later migrations skip
# what already exists.
def _add_category_columns(conn: Connection) -> None:
    for table in ("catalog_skus", "order_lines"):
        columns = {c["name"] for c in inspect(conn).get_columns(table)}
        if "category_id" not in columns:
            conn.execute(
                text(f"ALTER TABLE {table} ADD COLUMN category_id VARCHAR(64) NOT NULL DEFAULT ''")
            )


def _add_reservation_columns(conn: Connection) -> None:
    columns = {c["name"] for c in inspect(conn).get_columns("orders")}
    if "reservation" not in columns:
        conn.execute(text("ALTER TABLE orders ADD COLUMN reservation INTEGER NOT NULL DEFAULT 0"))
        conn.execute(text(f"ALTER TABLE orders ADD COLUMN reservation_at {_timestamp(conn)}"))
        conn.execute(text("CREATE INDEX ix_orders_reservation ON orders (reservation, state)"))


def _add_after_sales_columns(conn: Connection) -> None:
    columns = {c["name"] for c in inspect(conn).get_columns("refunds")}
    added = {
        "kind": "INTEGER NOT NULL DEFAULT 1",
        "reject_reason": "INTEGER NOT NULL DEFAULT 0",
        "reject_note": "VARCHAR(500) NOT NULL DEFAULT ''",
        "return_tracking": "VARCHAR(128) NOT NULL DEFAULT ''",
        "escalation_note": "VARCHAR(500) NOT NULL DEFAULT ''",
        "updated_at": _timestamp(conn),
    }
    for name, kind in added.items():
        if name not in columns:
            conn.execute(text(f"ALTER TABLE refunds ADD COLUMN {name} {kind}"))


def _add_affiliate_scopes(conn: Connection) -> None:
    columns = {c["name"] for c in inspect(conn).get_columns("commission_rates")}
    if "creator_id" not in columns:
        conn.execute(
            text(
                "ALTER TABLE commission_rates ADD COLUMN creator_id VARCHAR(64) NOT NULL DEFAULT ''"
            )
        )
    if "shop_ads" not in columns:
        conn.execute(
            text("ALTER TABLE commission_rates ADD COLUMN shop_ads BOOLEAN NOT NULL DEFAULT false")
        )
    metadata.create_all(conn, tables=[commission_locks])


def _add_risk_signals(conn: Connection) -> None:
    columns = {c["name"] for c in inspect(conn).get_columns("ledger")}
    if "frozen_reason" not in columns:
        conn.execute(
            text("ALTER TABLE ledger ADD COLUMN frozen_reason VARCHAR(200) NOT NULL DEFAULT ''")
        )
    metadata.create_all(conn, tables=[risk_creators, flagged_clicks])


def _add_flash_sales(conn: Connection) -> None:
    columns = {c["name"] for c in inspect(conn).get_columns("order_lines")}
    if "flash_sale_id" not in columns:
        conn.execute(
            text("ALTER TABLE order_lines ADD COLUMN flash_sale_id VARCHAR(64) NOT NULL DEFAULT ''")
        )
    metadata.create_all(conn, tables=[flash_sales, flash_claims])


def _add_live_schedule(conn: Connection) -> None:
    columns = {c["name"] for c in inspect(conn).get_columns("live_sessions")}
    if "scheduled_for" not in columns:
        conn.execute(text(f"ALTER TABLE live_sessions ADD COLUMN scheduled_for {_timestamp(conn)}"))


def _add_creator_approval(conn: Connection) -> None:
    columns = {c["name"] for c in inspect(conn).get_columns("commission_rates")}
    if "require_approval" not in columns:
        conn.execute(
            text(
                "ALTER TABLE commission_rates "
                "ADD COLUMN require_approval BOOLEAN NOT NULL DEFAULT false"
            )
        )
    metadata.create_all(conn, tables=[approved_creators])


def _add_packages(conn: Connection) -> None:
    columns = {c["name"] for c in inspect(conn).get_columns("orders")}
    if "ship_to_region" not in columns:
        conn.execute(
            text("ALTER TABLE orders ADD COLUMN ship_to_region VARCHAR(32) NOT NULL DEFAULT ''")
        )
    metadata.create_all(conn, tables=[packages, package_lines])


def _add_package_tracking(conn: Connection) -> None:
    columns = {c["name"] for c in inspect(conn).get_columns("packages")}
    if "tracked_at" not in columns:
        conn.execute(text(f"ALTER TABLE packages ADD COLUMN tracked_at {_timestamp(conn)}"))


def _add_seller_response_deadline(conn: Connection) -> None:
    columns = {c["name"] for c in inspect(conn).get_columns("refunds")}
    if "respond_by" not in columns:
        # Older requests keep NULL: nobody told their sellers of a deadline.
        conn.execute(text(f"ALTER TABLE refunds ADD COLUMN respond_by {_timestamp(conn)}"))
        conn.execute(text("CREATE INDEX ix_refunds_unanswered ON refunds (state, respond_by)"))
    if "auto_approved" not in columns:
        conn.execute(
            text("ALTER TABLE refunds ADD COLUMN auto_approved BOOLEAN NOT NULL DEFAULT false")
        )


def _timestamp(conn: Connection) -> str:
    return "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "DATETIME"


MIGRATIONS = [
    create_tables(1, "commerce tables", metadata),
    Migration(2, "category of SKUs and order lines", _add_category_columns),
    # checkfirst: a fresh database already has them from version 1's create_all.
    Migration(
        3,
        "payment intents and provider refunds",
        lambda conn: metadata.create_all(conn, tables=[payment_intents, provider_refunds]),
    ),
    Migration(4, "catalog's hold on each order's stock", _add_reservation_columns),
    Migration(5, "after-sales requests: types, rejections, returns", _add_after_sales_columns),
    Migration(
        6, "the sellers' ledger", lambda conn: metadata.create_all(conn, tables=[seller_ledger])
    ),
    Migration(7, "targeted and Shop Ads commission rates, rate-cut locks", _add_affiliate_scopes),
    Migration(8, "risk signals that freeze commissions", _add_risk_signals),
    Migration(9, "flash sales in live sessions", _add_flash_sales),
    Migration(
        10,
        "live sales per product",
        lambda conn: metadata.create_all(conn, tables=[live_product_stats]),
    ),
    Migration(11, "scheduled live sessions", _add_live_schedule),
    Migration(12, "sellers' approval of creators", _add_creator_approval),
    Migration(13, "packages and the buyer's region", _add_packages),
    Migration(14, "when each package was last tracked", _add_package_tracking),
    Migration(
        15, "the seller's deadline to answer an after-sales request", _add_seller_response_deadline
    ),
]
