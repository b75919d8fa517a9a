"""What a database error means for the caller: worth a retry, the data's fault, or neither.

A consumer retries only what a retry can fix (a locked SQLite file, a lost PostgreSQL
connection, a serialization failure); an overflowing sum, a value too long for its column or a
violated constraint fails the same way every time, so it goes to the DLQ (kafka/dispatch.py) or
answers INVALID_ARGUMENT (grpc/errors.py) instead of looping.
"""

from __future__ import annotations

import enum
import sqlite3

from sqlalchemy import exc as sa


class DbFailure(enum.Enum):
    # The same statement may well succeed later: locks, lost connections, I/O, shutdowns.
    TRANSIENT = "transient"
    # The data cannot be stored: out of range, overflow, too long, wrong type.
    DATA = "data"
    # A constraint refused the change (unique, foreign key, check, not null).
    INTEGRITY = "integrity"
    # A bug or a schema mismatch (syntax, missing table): deterministic too.
    OTHER = "other"


# SQLite reports all of these as OperationalError; only these are worth a retry.
_SQLITE_TRANSIENT = (
    "database is locked",
    "database table is locked",
    "database schema has changed",
    "disk i/o error",
    "unable to open database",
    "database or disk is full",
    "interrupted",
    "locking protocol",
)
_SQLITE_DATA = ("integer overflow", "string or blob too big", "too big", "datatype mismatch")

# PostgreSQL SQLSTATE classes: 08 connection, 40 rollback (serialization, deadlock), 53
# resources, 55 lock not available, 57 operator intervention (shutdown, cancel), 58 system I/O.
_PG_TRANSIENT_CLASSES = ("08", "40", "53", "55", "57", "58")


def classify_db_error(error: BaseException) -> DbFailure | None:
    """The kind of a database failure, or None when `error` is no database error at all."""
    if isinstance(error, sa.DBAPIError):
        if error.connection_invalidated:
            return DbFailure.TRANSIENT
        return _classify_driver_error(error, error.orig)
    if isinstance(error, sqlite3.Error):
        return _classify_driver_error(error, error)
    return None


def _classify_driver_error(error: BaseException, orig: BaseException | None) -> DbFailure:
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if isinstance(sqlstate, str) and len(sqlstate) == 5:
        if sqlstate.startswith(_PG_TRANSIENT_CLASSES):
            return DbFailure.TRANSIENT
        if sqlstate.startswith("22"):
            return DbFailure.DATA
        if sqlstate.startswith("23"):
            return DbFailure.INTEGRITY
        return DbFailure.OTHER
    if isinstance(error, sa.IntegrityError) or isinstance(orig, sqlite3.IntegrityError):
        return DbFailure.INTEGRITY
    if isinstance(error, sa.DataError) or isinstance(orig, (sqlite3.DataError, OverflowError)):
        return DbFailure.DATA
    message = str(orig if orig is not None else error).lower()
    if any(text in message for text in _SQLITE_DATA):
        return DbFailure.DATA
    if any(text in message for text in _SQLITE_TRANSIENT):
        return DbFailure.TRANSIENT
    if isinstance(orig, OSError) or ("connection" in message and "closed" in message):
        # A socket gone away; asyncpg's "connection is closed" carries no SQLSTATE.
        return DbFailure.TRANSIENT
    return DbFailure.OTHER
