"""Hostile requests for every RPC of a gRPC service, generated from its descriptors: the fuzz
tests' generator and caller. A service passes when no call answers INTERNAL or UNKNOWN (a bug
or an unmapped error) or a status too large for the client to read, and its health stays SERVING.

Requests come in five kinds: messages filled with edge values (huge, negative and zero numbers,
NaN and infinities, unknown enum values, long, empty and odd strings, out-of-range timestamps,
deep nesting, long repeated fields), the same with invalid UTF-8 written into a string field at
the wire level (Python cannot build such a message), truncated bodies, random bytes and the
empty body. Each call goes as a random role with a random id, or with no token.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health_pb2, health_pb2_grpc

# The codes that mean the service failed rather than the request.
FAILURE_CODES = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN})

_STRINGS = (
    "",
    " ",
    "x",
    "a" * 10_000,
    "ünïcødé 🛒 ✓",
    "\x00\x01\x7f",
    "' OR 1=1 --",
    "../../etc/passwd",
    "%s%n%x",
    "-1",
    "9" * 40,
    "1e309",
    "NaN",
    "\u202e\u200b",
    "prd-1",
    "USD",
)
_INT32 = (0, 1, -1, 2**31 - 1, -(2**31), 1000, -1000)
_INT64 = (0, 1, -1, 2**63 - 1, -(2**63), 2**53 + 1, -(2**53) - 1, 10**15)
_UINT32 = (0, 1, 2**32 - 1)
_UINT64 = (0, 1, 2**64 - 1, 2**63)
_DOUBLES = (0.0, -0.0, 1.0, -1.0, math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, 0.5)
_FLOATS = (0.0, -1.0, math.nan, math.inf, -math.inf, 3.4e38, -3.4e38, 1e-45)
_ENUM_UNKNOWN = (999, -1, 2**31 - 1, -(2**31))
_TIMESTAMP_SECONDS = (0, -1, 2**62, -(2**62), 253_402_300_800, -62_135_596_801, 1_800_000_000)
_NANOS = (0, -1, 999_999_999, 1_000_000_000, 2**31 - 1)
_CURRENCIES = ("", "USD", "GBP", "JPY", "usd", "XXXX", "€", "US")

_INTS: dict[int, Sequence[int]] = {
    FieldDescriptor.TYPE_INT32: _INT32,
    FieldDescriptor.TYPE_SINT32: _INT32,
    FieldDescriptor.TYPE_SFIXED32: _INT32,
    FieldDescriptor.TYPE_INT64: _INT64,
    FieldDescriptor.TYPE_SINT64: _INT64,
    FieldDescriptor.TYPE_SFIXED64: _INT64,
    FieldDescriptor.TYPE_UINT32: _UINT32,
    FieldDescriptor.TYPE_FIXED32: _UINT32,
    FieldDescriptor.TYPE_UINT64: _UINT64,
    FieldDescriptor.TYPE_FIXED64: _UINT64,
}


class HostileMessages:
    """Edge-value messages of one type, reproducible from the seed."""

    def __init__(self, rng: random.Random, max_depth: int = 4) -> None:
        self._rng = rng
        self._max_depth = max_depth

    def message(self, descriptor: Descriptor) -> Message:
        message: Message = GetMessageClass(descriptor)()
        self._fill(message, 0)
        return message

    def _fill(self, message: Message, depth: int) -> None:
        rng = self._rng
        descriptor = message.DESCRIPTOR
        if descriptor.full_name == "google.protobuf.Timestamp":
            message.seconds = rng.choice(_TIMESTAMP_SECONDS)  # type: ignore[attr-defined]
            message.nanos = rng.choice(_NANOS)  # type: ignore[attr-defined]
            return
        for fd in descriptor.fields:
            if rng.random() < 0.3:
                continue
            if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
                self._fill_map(message, fd, depth)
            elif fd.is_repeated:
                count = rng.choice((0, 1, 2, 3, 200)) if depth < 2 else rng.choice((0, 1))
                for _ in range(count):
                    self._add(message, fd, depth)
            elif fd.message_type is not None:
                if depth < self._max_depth:
                    self._fill(getattr(message, fd.name), depth + 1)
                    if not message.HasField(fd.name):
                        getattr(message, fd.name).SetInParent()
            else:
                self._set(message, fd)

    def _fill_map(self, message: Message, fd: Any, depth: int) -> None:
        entry = fd.message_type
        key_fd, value_fd = entry.fields_by_name["key"], entry.fields_by_name["value"]
        target = getattr(message, fd.name)
        for _ in range(self._rng.choice((0, 1, 3, 100))):
            key = self.scalar(key_fd)
            if value_fd.message_type is not None:
                if depth < self._max_depth:
                    self._fill(target[key], depth + 1)
            else:
                target[key] = self.scalar(value_fd)

    def _add(self, message: Message, fd: Any, depth: int) -> None:
        container = getattr(message, fd.name)
        if fd.message_type is not None:
            item = container.add()
            if depth < self._max_depth:
                self._fill(item, depth + 1)
        else:
            container.append(self.scalar(fd))

    def _set(self, message: Message, fd: Any) -> None:
        value = self.scalar(fd)
        if fd.name == "currency" and fd.type == FieldDescriptor.TYPE_STRING:
            value = self._rng.choice(_CURRENCIES)
        setattr(message, fd.name, value)

    def scalar(self, fd: Any) -> Any:
        rng = self._rng
        kind = fd.type
        if kind == FieldDescriptor.TYPE_STRING:
            return rng.choice(_STRINGS)
        if kind == FieldDescriptor.TYPE_BYTES:
            return rng.randbytes(rng.choice((0, 1, 16, 1000)))
        if kind == FieldDescriptor.TYPE_BOOL:
            return rng.random() < 0.5
        if kind == FieldDescriptor.TYPE_DOUBLE:
            return rng.choice(_DOUBLES)
        if kind == FieldDescriptor.TYPE_FLOAT:
            return rng.choice(_FLOATS)
        if kind == FieldDescriptor.TYPE_ENUM:
            known = [v.number for v in fd.enum_type.values]
            closed = getattr(fd.enum_type, "is_closed", False)
            return rng.choice(known if closed else known + list(_ENUM_UNKNOWN))
        return rng.choice(_INTS[kind])


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _string_fields(descriptor: Descriptor) -> list[FieldDescriptor]:
    return [f for f in descriptor.fields if f.type == FieldDescriptor.TYPE_STRING]


def mutate(seed: Message, rng: random.Random) -> Message:
    """`seed` (a valid request) with one field, at any depth, given a hostile value: such a
    request passes the checks a wholly hostile one fails, and reaches the domain code."""
    message: Message = type(seed)()
    message.CopyFrom(seed)
    slots: list[tuple[Message, Any]] = []

    def collect(current: Message, depth: int) -> None:
        for fd in current.DESCRIPTOR.fields:
            slots.append((current, fd))
            is_map = fd.message_type is not None and fd.message_type.GetOptions().map_entry
            if depth < 3 and fd.message_type is not None and not is_map:
                if fd.is_repeated:
                    for item in getattr(current, fd.name):
                        collect(item, depth + 1)
                elif current.HasField(fd.name):
                    collect(getattr(current, fd.name), depth + 1)

    collect(message, 0)
    if not slots:
        return message
    parent, fd = rng.choice(slots)
    messages = HostileMessages(rng, max_depth=2)
    is_map = fd.message_type is not None and fd.message_type.GetOptions().map_entry
    if is_map:
        messages._fill_map(parent, fd, 1)
    elif fd.is_repeated:
        if rng.random() < 0.3:
            parent.ClearField(fd.name)
        else:
            messages._add(parent, fd, 1)
    elif fd.message_type is not None:
        parent.ClearField(fd.name)
        messages._fill(getattr(parent, fd.name), 1)
        getattr(parent, fd.name).SetInParent()
    else:
        messages._set(parent, fd)
    return message


def hostile_bodies(
    descriptor: Descriptor,
    rng: random.Random,
    count: int,
    seeds: Sequence[Message] = (),
) -> Iterator[bytes]:
    """`count` request bodies for messages of `descriptor`, every kind represented; with valid
    `seeds`, half of them are a seed with one field made hostile."""
    messages = HostileMessages(rng)
    strings = _string_fields(descriptor)
    for i in range(count):
        kind = i % 10
        if seeds and i % 2:
            yield mutate(rng.choice(seeds), rng).SerializeToString()
            continue
        body = messages.message(descriptor).SerializeToString()
        if kind in (1, 2) and strings:
            # A string field holding bytes that are not UTF-8 (appended: the last value wins).
            fd = rng.choice(strings)
            bad = rng.choice((b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"ok\xfe\xff"))
            yield body + _varint(fd.number << 3 | 2) + _varint(len(bad)) + bad
        elif kind == 3 and len(body) > 1:
            yield body[: rng.randrange(1, len(body))]
        elif kind == 4:
            yield rng.randbytes(rng.choice((1, 7, 64)))
        elif kind == 5:
            yield b""
        else:
            yield body


@dataclass
class FuzzReport:
    service: str
    codes: Counter[tuple[str, str]] = field(default_factory=Counter)
    # The first message seen per (method, code), to tell what each outcome was.
    examples: dict[tuple[str, str], str] = field(default_factory=dict)
    failures: list[tuple[str, str, str, bytes]] = field(default_factory=list)

    def calls(self, method: str) -> int:
        return sum(n for (m, _), n in self.codes.items() if m == method)

    def summary(self) -> str:
        lines = [f"{self.service}: {sum(self.codes.values())} calls"]
        for (method, code), n in sorted(self.codes.items()):
            example = self.examples.get((method, code), "")[:90]
            lines.append(f"  {method:28} {code:20} {n:5}  {example}")
        for method, code, details, body in self.failures[:20]:
            lines.append(f"FAILED {method} {code} {details!r} body={body[:80].hex()}")
        return "\n".join(lines)


def _identity(data: bytes) -> bytes:
    return data


async def fuzz_service(
    channel: grpc.aio.Channel,
    service_name: str,
    mint: Callable[[str, str], str],
    roles: Sequence[str],
    *,
    per_method: int = 300,
    seed: int = 7,
    concurrency: int = 8,
    timeout_s: float = 20.0,
    stream_wait_s: float = 0.2,
    seeds: Mapping[str, Sequence[Message]] | None = None,
) -> FuzzReport:
    """Call every method of `service_name` `per_method` times with hostile bodies; `seeds` maps
    a method name to valid requests whose mutations make half of that method's calls."""
    service = descriptor_pool.Default().FindServiceByName(service_name)
    report = FuzzReport(service_name)
    rng = random.Random(seed)
    tokens = {role: mint(role, f"fuzz-{role}") for role in {*roles, "admin"}}

    def planned() -> Iterator[tuple[MethodDescriptor, bytes, list[tuple[str, str]]]]:
        # Generated as the calls go, so a few bodies are in memory at a time, not thousands.
        for method in service.methods:
            valid = (seeds or {}).get(method.name, ())
            for body in hostile_bodies(method.input_type, rng, per_method, valid):
                # Mostly as an admin, whom the access policy lets through to the domain code.
                pick = rng.random()
                role = None if pick < 0.1 else "admin" if pick < 0.55 else rng.choice(roles)
                metadata = [] if role is None else [("authorization", f"Bearer {tokens[role]}")]
                yield method, body, metadata

    async def one(method: MethodDescriptor, body: bytes, metadata: list[tuple[str, str]]) -> None:
        path = f"/{service_name}/{method.name}"
        code = grpc.StatusCode.OK
        details = ""
        try:
            if method.server_streaming:
                call = channel.unary_stream(
                    path, request_serializer=_identity, response_deserializer=_identity
                )(body, metadata=metadata, timeout=timeout_s)
                # A watch with nothing to say yet was accepted: no answer in time is fine.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(call.read(), stream_wait_s)
                call.cancel()
            else:
                await channel.unary_unary(
                    path, request_serializer=_identity, response_deserializer=_identity
                )(body, metadata=metadata, timeout=timeout_s)
        except grpc.aio.AioRpcError as error:
            code, details = error.code(), error.details() or ""
        report.codes[(method.name, code.name)] += 1
        report.examples.setdefault((method.name, code.name), details)
        # A status too large for the client's header limit hides the service's real answer.
        if code in FAILURE_CODES or "metadata size exceeds" in details:
            report.failures.append((method.name, code.name, details, body[:200]))

    plan = planned()

    async def worker() -> None:
        for method, body, metadata in plan:
            await one(method, body, metadata)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return report


async def health_status(channel: grpc.aio.Channel) -> str:
    response = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=""), timeout=5
    )
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))
