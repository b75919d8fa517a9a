"""The worker's typed routes (stream/routes.py): each handler gets its message as its type."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf.message import Message

from shopstream.ads.v1 import ads_events_pb2 as ev
from shopstream_ads.stream.routes import Routes
from shopstream_platform.kafka.events import Event, InvalidEventError, Outcome


class _Event:
    def __init__(self, message: Message) -> None:
        self.message = message


async def test_a_route_hands_its_handler_the_message_as_its_type() -> None:
    seen: list[Any] = []

    async def on_lines(event: Event[Message], lines: ev.LedgerLines) -> Outcome:
        seen.append(lines.worker)
        return Outcome.PROCESSED

    table = Routes().on(ev.LedgerLines, on_lines).table()
    assert list(table) == [ev.LedgerLines]
    outcome = await table[ev.LedgerLines](_Event(ev.LedgerLines(worker="w")))
    assert (outcome, seen) == (Outcome.PROCESSED, ["w"])
    with pytest.raises(InvalidEventError):
        await table[ev.LedgerLines](_Event(ev.LedgerEntry()))
