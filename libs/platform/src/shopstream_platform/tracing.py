"""W3C trace context: the `traceparent` of the work in progress, carried across Kafka and gRPC."""

from __future__ import annotations

import os
import re
from contextvars import ContextVar

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

current_traceparent: ContextVar[str | None] = ContextVar("current_traceparent", default=None)


def new_traceparent() -> str:
    return f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"


def child_traceparent(parent: str | None) -> str:
    """Same trace, new span id; a fresh trace when the parent is missing or malformed."""
    if parent:
        match = _TRACEPARENT.match(parent)
        if match:
            return f"00-{match.group(1)}-{os.urandom(8).hex()}-{match.group(3)}"
    return new_traceparent()


def outgoing_traceparent() -> str:
    """The traceparent to stamp on a record or call made now."""
    return child_traceparent(current_traceparent.get())
