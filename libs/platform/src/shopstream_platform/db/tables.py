"""The platform's own tables in every service database, and the migrations that create them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import Connection

from shopstream_platform.db.migrations import Migration
from shopstream_platform.db.types import UtcDateTime

metadata = MetaData()

# BigInteger ids autoincrement on PostgreSQL; SQLite needs INTEGER for its rowid alias.
_Id = BigInteger().with_variant(Integer(), "sqlite")

outbox = Table(
    "outbox",
    metadata,
    # Relay order is id order, so events of one key leave in the order they were written.
    Column("id", _Id, primary_key=True, autoincrement=True),
    Column("topic", String(249), nullable=False),
    Column("key", String(500), nullable=False),
    Column("ce_id", String(64), nullable=False, unique=True),
    Column("ce_type", String(200), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    # JSON list of [name, value] pairs: CloudEvents headers and traceparent as written.
    Column("headers", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

inbox = Table(
    "inbox",
    metadata,
    Column("consumer_group", String(200), primary_key=True),
    Column("event_id", String(64), primary_key=True),
    Column("topic", String(249), nullable=False),
    Column("partition", Integer, nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("processed_at", UtcDateTime(), nullable=False, index=True),
)


# Outbox rows that can never be published (larger than the broker accepts, or refused by it for
# a reason a retry cannot change): moved here with the reason, so they stop blocking the relay
# and an operator can inspect, fix and re-insert them. Same columns as the outbox, plus why.
outbox_dead_letters = Table(
    "outbox_dead_letters",
    metadata,
    Column("id", _Id, primary_key=True, autoincrement=False),
    Column("topic", String(249), nullable=False),
    Column("key", String(500), nullable=False),
    Column("ce_id", String(64), nullable=False, unique=True),
    Column("ce_type", String(200), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("headers", Text, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("dead_lettered_at", UtcDateTime(), nullable=False),
    Column("reason", Text, nullable=False),
)


def _create_outbox_and_inbox(conn: Connection) -> None:
    metadata.create_all(conn, tables=[outbox, inbox])


def _create_outbox_dead_letters(conn: Connection) -> None:
    metadata.create_all(conn, tables=[outbox_dead_letters])


PLATFORM_MIGRATIONS = [
    Migration(1, "outbox and inbox", _create_outbox_and_inbox),
    Migration(2, "outbox dead letters", _create_outbox_dead_letters),
]
