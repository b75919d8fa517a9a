"""What a handler receives and may raise: the consumed event and the errors the loop understands."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from google.protobuf.message import Message

from shopstream_platform.kafka.cloudevents import CloudEventMeta

M = TypeVar("M", bound=Message, covariant=True)


@dataclass(frozen=True)
class Event(Generic[M]):
    """One decoded record with its coordinates and CloudEvents metadata."""

    topic: str
    partition: int
    offset: int
    key: str | None
    meta: CloudEventMeta
    message: M
    headers: dict[str, str] = field(default_factory=dict)


class Outcome(enum.Enum):
    PROCESSED = "processed"
    # Seen before (same ce_id): acknowledged without applying it again.
    DUPLICATE = "duplicate"
    # A type this consumer does not handle on a topic it reads: acknowledged and skipped.
    IGNORED = "ignored"
    DEAD_LETTERED = "dead_lettered"


Handler = Callable[[Event[Message]], Awaitable[Outcome | None]]


class InvalidEventError(ValueError):
    """The event decoded but breaks a rule (missing id, negative quantity): dead-letter it."""


class TransientError(RuntimeError):
    """A failure worth retrying (a dependency is briefly unavailable); the event itself is fine."""
