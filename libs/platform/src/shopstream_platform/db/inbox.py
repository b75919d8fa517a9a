"""Consumer inbox: a handler's effects and the record of having applied the event commit together.

The inbox row is inserted before the handler runs, in the same transaction, so a redelivered or
re-published event (same ce_id) finds it and is skipped: at-least-once delivery, exactly-once effect.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from google.protobuf.message import Message
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream_platform.db.database import Database
from shopstream_platform.db.tables import inbox
from shopstream_platform.kafka.events import Event, Handler, Outcome

SessionHandler = Callable[[Event[Message], AsyncSession], Awaitable[None]]


class _Duplicate(Exception):
    pass


class SqlInbox:
    def __init__(self, db: Database, consumer_group: str) -> None:
        self._db = db
        self._group = consumer_group

    def handler(self, fn: SessionHandler) -> Handler:
        """Wrap a handler that takes a session into a deduplicating consumer handler."""

        async def handle(event: Event[Message]) -> Outcome:
            try:
                async with self._db.transaction() as session:
                    try:
                        await session.execute(
                            inbox.insert().values(
                                consumer_group=self._group,
                                event_id=event.meta.id,
                                topic=event.topic,
                                partition=event.partition,
                                offset=event.offset,
                                processed_at=datetime.now(UTC),
                            )
                        )
                    except IntegrityError:
                        raise _Duplicate from None
                    await fn(event, session)
            except _Duplicate:
                return Outcome.DUPLICATE
            return Outcome.PROCESSED

        return handle

    async def prune(self, older_than: timedelta) -> int:
        """Forget events processed long ago (past any redelivery window); returns rows removed."""
        cutoff = datetime.now(UTC) - older_than
        async with self._db.transaction() as session:
            result = await session.execute(
                delete(inbox).where(
                    inbox.c.consumer_group == self._group, inbox.c.processed_at < cutoff
                )
            )
        return int(getattr(result, "rowcount", 0) or 0)
