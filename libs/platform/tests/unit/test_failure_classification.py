"""A consumer error is transient only when a retry can succeed (issue 15, 2.7)."""

import asyncio
import sqlite3
from datetime import UTC, datetime
from typing import Any

import pytest
from google.protobuf.message import Message
from sqlalchemy import exc as sa

from shopstream.platform.v1 import heartbeat_pb2
from shopstream_platform.db.errors import DbFailure, classify_db_error
from shopstream_platform.errors import InvalidArgumentError, UnavailableError
from shopstream_platform.kafka.cloudevents import CloudEventMeta
from shopstream_platform.kafka.dispatch import (
    ConsumerStalledError,
    Dispatcher,
    RawRecord,
    is_transient,
)
from shopstream_platform.kafka.dlq import DeadLetterPublisher
from shopstream_platform.kafka.events import Event, InvalidEventError, Outcome, TransientError
from shopstream_platform.metrics import PlatformMetrics
from shopstream_platform.settings import ConsumerSettings

DECLARED = (sa.OperationalError,)


def sqlite_error(message: str) -> sa.OperationalError:
    return sa.OperationalError("UPDATE stock ...", {}, sqlite3.OperationalError(message))


class PgError(Exception):
    """Stands in for SQLAlchemy's adapted asyncpg error, which carries the SQLSTATE."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def pg_error(cls: type[sa.DBAPIError], sqlstate: str) -> sa.DBAPIError:
    return cls("SELECT ...", {}, PgError(sqlstate))


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (sqlite_error("integer overflow"), DbFailure.DATA),
        (sqlite_error("string or blob too big"), DbFailure.DATA),
        (sqlite_error("database is locked"), DbFailure.TRANSIENT),
        (sqlite_error("disk I/O error"), DbFailure.TRANSIENT),
        (sqlite_error("no such table: stock"), DbFailure.OTHER),
        (
            sa.IntegrityError("INSERT", {}, sqlite3.IntegrityError("CHECK constraint failed")),
            DbFailure.INTEGRITY,
        ),
        (pg_error(sa.DBAPIError, "22003"), DbFailure.DATA),  # numeric_value_out_of_range
        (pg_error(sa.DBAPIError, "22001"), DbFailure.DATA),  # string_data_right_truncation
        (pg_error(sa.IntegrityError, "23505"), DbFailure.INTEGRITY),  # unique_violation
        (pg_error(sa.OperationalError, "40001"), DbFailure.TRANSIENT),  # serialization_failure
        (pg_error(sa.OperationalError, "40P01"), DbFailure.TRANSIENT),  # deadlock_detected
        (pg_error(sa.OperationalError, "08006"), DbFailure.TRANSIENT),  # connection_failure
        (pg_error(sa.OperationalError, "57P01"), DbFailure.TRANSIENT),  # admin_shutdown
        (pg_error(sa.ProgrammingError, "42P01"), DbFailure.OTHER),  # undefined_table
        (sa.OperationalError("SELECT", {}, ConnectionResetError()), DbFailure.TRANSIENT),
        (KeyError("no database error"), None),
    ],
)
def test_database_failures_are_classified(error: BaseException, kind: DbFailure | None) -> None:
    assert classify_db_error(error) == kind


def test_lost_connection_is_transient_whatever_the_message() -> None:
    error = sqlite_error("something odd")
    error.connection_invalidated = True
    assert classify_db_error(error) is DbFailure.TRANSIENT


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (TransientError("broker away"), True),
        (TimeoutError(), True),
        (sqlite_error("database is locked"), True),
        (pg_error(sa.OperationalError, "40001"), True),
        # Declared (OperationalError) but deterministic: the overflow that crash-looped catalog.
        (sqlite_error("integer overflow"), False),
        (pg_error(sa.OperationalError, "22003"), False),
        (sa.IntegrityError("INSERT", {}, sqlite3.IntegrityError("UNIQUE")), False),
        (OverflowError("Python int too large to convert to SQLite INTEGER"), False),
        (InvalidEventError("quantity is negative"), False),
        (InvalidArgumentError("quantity", "out of range"), False),
        (KeyError("a bug"), False),
        (UnavailableError("payment provider"), False),  # not declared by this consumer
    ],
)
def test_only_failures_a_retry_can_fix_are_transient(error: BaseException, transient: bool) -> None:
    assert is_transient(error, (TransientError, TimeoutError, *DECLARED)) is transient


def test_declared_types_stay_transient_unless_deterministic() -> None:
    assert is_transient(UnavailableError("provider"), (UnavailableError,))
    # Declaring a deterministic type does not make it retryable.
    assert not is_transient(OverflowError(), (OverflowError,))
    assert not is_transient(ValueError(), (Exception,))


class RecordingDeadLetters(DeadLetterPublisher):
    def __init__(self) -> None:
        super().__init__(producer=None)  # type: ignore[arg-type]
        self.sent: list[tuple[RawRecord, BaseException]] = []

    async def send(self, record: RawRecord, group: str, error: BaseException) -> None:
        self.sent.append((record, error))


def record() -> RawRecord:
    meta = CloudEventMeta(
        id="e1",
        type="shopstream.platform.v1.Heartbeat",
        source="shopstream/test",
        time=datetime.now(UTC),
    )
    return RawRecord(
        topic="t.v1",
        partition=0,
        offset=7,
        key=b"k",
        value=heartbeat_pb2.Heartbeat(sequence=1).SerializeToString(),
        headers=meta.to_headers(),
    )


def dispatcher(handler: Any, dead: RecordingDeadLetters) -> Dispatcher:
    return Dispatcher(
        group_id="g",
        routes={heartbeat_pb2.Heartbeat: handler},
        dead_letters=dead,
        metrics=PlatformMetrics("test"),
        settings=ConsumerSettings(max_attempts=3, backoff_initial_s=0.001, backoff_max_s=0.001),
        transient=DECLARED,
    )


async def test_deterministic_database_failure_goes_to_the_dlq_after_one_attempt() -> None:
    calls: list[int] = []

    async def overflow(event: Event[Message]) -> None:
        calls.append(1)
        raise sqlite_error("integer overflow")

    dead = RecordingDeadLetters()
    assert await dispatcher(overflow, dead).dispatch(record()) is Outcome.DEAD_LETTERED
    assert len(calls) == 1
    [(sent, error)] = dead.sent
    assert sent.offset == 7 and "integer overflow" in str(error)


async def test_transient_database_failure_is_retried_then_stalls() -> None:
    calls: list[int] = []

    async def locked(event: Event[Message]) -> None:
        calls.append(1)
        raise sqlite_error("database is locked")

    dead = RecordingDeadLetters()
    with pytest.raises(ConsumerStalledError):
        await dispatcher(locked, dead).dispatch(record())
    assert len(calls) == 3 and dead.sent == []


async def test_transient_failure_that_heals_is_processed() -> None:
    calls: list[int] = []

    async def flaky(event: Event[Message]) -> None:
        calls.append(1)
        if len(calls) < 2:
            raise sqlite_error("database is locked")
        await asyncio.sleep(0)

    dead = RecordingDeadLetters()
    assert await dispatcher(flaky, dead).dispatch(record()) is Outcome.PROCESSED
    assert len(calls) == 2 and dead.sent == []
