"""Checks every request gets before its servicer runs: it decoded, its timestamps are real, its
page sizes are not negative. Each failure is INVALID_ARGUMENT naming the field, never INTERNAL.

Generic over the protos, so a new RPC is covered without code of its own. The walk visits only
fields that can hold a Timestamp or a PageRequest (planned once per message type), so a request
with neither (GetProduct on the hot path) costs one dictionary look-up.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from shopstream_platform.errors import InvalidArgumentError

TIMESTAMP = "google.protobuf.Timestamp"
PAGE_REQUEST = "shopstream.common.v1.PageRequest"
_CHECKED = frozenset({TIMESTAMP, PAGE_REQUEST})
# google.protobuf.Timestamp's valid range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
MIN_TIMESTAMP_SECONDS = -62_135_596_800
MAX_TIMESTAMP_SECONDS = 253_402_300_799


class UndecodableRequest:
    """Stands in for a request body that did not decode, so the call can answer INVALID_ARGUMENT
    (grpc would answer UNKNOWN "Unexpected DecodeError" if the deserializer raised)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def tolerant_deserializer(
    deserialize: Callable[[bytes], Any] | None,
) -> Callable[[bytes], Any] | None:
    """`deserialize` that returns an UndecodableRequest instead of raising."""
    if deserialize is None:
        return None

    def tolerant(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as exc:  # DecodeError, and invalid UTF-8 in a string field
            return UndecodableRequest(exc)

    return tolerant


def check_request(request: Any) -> None:
    """Raise InvalidArgumentError for an undecodable body or an out-of-range field."""
    if isinstance(request, UndecodableRequest):
        raise InvalidArgumentError(
            "request", f"the body is not a valid protobuf message ({_describe(request.error)})"
        )
    if isinstance(request, Message):
        _check(request, "")


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text[:200]


def _check(message: Message, prefix: str) -> None:
    for field in _plan(message.DESCRIPTOR):
        name = prefix + field.name
        value = getattr(message, field.name)
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            for key, item in value.items():
                _visit(item, f"{name}[{key}]")
        elif field.is_repeated:
            for i, item in enumerate(value):
                _visit(item, f"{name}[{i}]")
        elif message.HasField(field.name):
            _visit(value, name)


def _visit(message: Message, name: str) -> None:
    full_name = message.DESCRIPTOR.full_name
    if full_name == TIMESTAMP:
        seconds, nanos = message.seconds, message.nanos  # type: ignore[attr-defined]
        if not MIN_TIMESTAMP_SECONDS <= seconds <= MAX_TIMESTAMP_SECONDS:
            raise InvalidArgumentError(name, "timestamp must be between year 1 and year 9999")
        if not 0 <= nanos <= 999_999_999:
            raise InvalidArgumentError(f"{name}.nanos", "must be 0..999999999")
    elif full_name == PAGE_REQUEST:
        if message.page_size < 0:  # type: ignore[attr-defined]
            raise InvalidArgumentError(f"{name}.page_size", "must not be negative")
    else:
        _check(message, name + ".")


@functools.cache
def _plan(descriptor: Descriptor) -> tuple[FieldDescriptor, ...]:
    """The message-typed fields of `descriptor` through which a checked type can be reached."""
    return tuple(
        field
        for field in descriptor.fields
        if field.message_type is not None and _reaches_checked(field.message_type)
    )


@functools.cache
def _reaches_checked(descriptor: Descriptor) -> bool:
    # Breadth-first over every message type reachable from here (cycles included).
    seen = {descriptor.full_name}
    queue = [descriptor]
    while queue:
        current = queue.pop()
        if current.full_name in _CHECKED:
            return True
        for field in current.fields:
            child = field.message_type
            if child is not None and child.full_name not in seen:
                seen.add(child.full_name)
                queue.append(child)
    return False
