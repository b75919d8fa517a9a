"""Consumers of the attribution worker's outputs (credits, flags) that keep only their own
deployment's: a second deployment on the same broker decides the same inputs from another start
and publishes on the same topics (docs/ads.md, known limits)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream_platform.db.inbox import SessionHandler
from shopstream_platform.kafka.events import Event, InvalidEventError

M = TypeVar("M", bound=Message)


def own_worker_only(
    worker: str, kind: type[M], apply: Callable[[M, AsyncSession], Awaitable[None]]
) -> SessionHandler:
    """A handler that applies `kind` records written by `worker` (the deployment's attribution
    worker, its Faust app id), and those that name no worker (written before they did)."""

    async def handle(event: Event[Message], session: AsyncSession) -> None:
        message = event.message
        if not isinstance(message, kind):
            raise InvalidEventError(f"not a {kind.__name__}: {type(message).__name__}")
        written_by: str = getattr(message, "worker", "")
        if written_by and written_by != worker:
            return
        await apply(message, session)

    return handle
