"""Typed routes for the worker's Faust agents: each handler is written for its message type, and
the narrowing from the dispatcher's `Event[Message]` happens once, here.

Issue 17 asks the platform for `Routes().on(OrderPlaced, handler)`; this is that shape for the
two agents of this worker until it exists, so moving to it changes an import, not the routes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from google.protobuf.message import Message

from shopstream_platform.kafka.events import Event, Handler, InvalidEventError, Outcome

M = TypeVar("M", bound=Message)


class Routes:
    def __init__(self) -> None:
        self._table: dict[type[Message], Handler] = {}

    def on(
        self, kind: type[M], handle: Callable[[Event[Message], M], Awaitable[Outcome]]
    ) -> Routes:
        """Route `kind` records to `handle`, which gets the record and its message as `kind`.
        Once per record (a batch of inputs or ledger lines), not per input."""

        async def route(event: Event[Message]) -> Outcome:
            message = event.message
            if not isinstance(message, kind):  # the dispatcher routes by type: never taken
                raise InvalidEventError(f"not a {kind.__name__}: {type(message).__name__}")
            return await handle(event, message)

        self._table[kind] = route
        return self

    def table(self) -> dict[type[Message], Handler]:
        """The dispatcher's routing table (shopstream_platform.faust_app.agent_dispatcher)."""
        return dict(self._table)
