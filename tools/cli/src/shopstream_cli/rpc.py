"""gRPC calls from the CLI: where each service listens, who the caller is, deadlines, errors.

Every query command goes through `connect`: one channel, a dev JWT minted like `shopstream
token` does, a deadline for every call, and any gRPC failure turned into one readable sentence
(`RpcFailure`) that `main` prints before exiting 1.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import grpc

from shopstream_cli.stack import SERVICES
from shopstream_cli.stack import local_address as stack_address
from shopstream_platform.grpc.auth import ROLES, TokenCodec
from shopstream_platform.settings import AuthSettings

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_PRINCIPAL = ("admin", "cli")
# A dev token lives a few minutes: long enough for one command, useless if it leaks from a log.
TOKEN_TTL_S = 300


def local_address(service: str) -> str:
    """The fixed local-stack address of a service (stack.SERVICES, the ports `make run` uses)."""
    for spec in SERVICES:
        if spec.name == service:
            return stack_address(spec)
    raise KeyError(f"unknown service {service!r}")


@dataclass(frozen=True)
class Target:
    """Which service a command calls, where, as whom and with what deadline."""

    service: str
    address: str
    principal: tuple[str, str] = DEFAULT_PRINCIPAL
    timeout_s: float = DEFAULT_TIMEOUT_S


class RpcFailure(Exception):
    """A call failed; the message says what happened and, when it can, what to do."""


def parse_principal(value: str) -> tuple[str, str]:
    """`role:id` for --as, e.g. `seller:seller-1`; argparse turns the error into usage + exit 2."""
    role, sep, subject = value.partition(":")
    if not sep or not subject:
        raise argparse.ArgumentTypeError(f"expected role:id (e.g. seller:seller-1), got {value!r}")
    if role not in ROLES:
        raise argparse.ArgumentTypeError(
            f"unknown role {role!r}; one of {', '.join(sorted(ROLES))}"
        )
    return role, subject


def describe_status(target: Target, code: grpc.StatusCode | None, details: str | None) -> str:
    """One sentence for a failed call: a stopped service gets the fix, anything else its status."""
    detail = (details or "").strip()
    if code is grpc.StatusCode.UNAVAILABLE and _is_connection_failure(detail):
        return (
            f"{target.service} is not running on {target.address} — start it with `shopstream up`"
        )
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return (
            f"{target.service} at {target.address} did not answer within "
            f"{target.timeout_s:g}s (DEADLINE_EXCEEDED); raise --timeout or check "
            "`shopstream status`"
        )
    name = code.name if code is not None else "UNKNOWN"
    return f"{target.service} answered {name}: {detail or 'no details'}"


def _is_connection_failure(details: str) -> bool:
    # gRPC core reports a refused or unreachable address as UNAVAILABLE with these phrases; a
    # service may also answer UNAVAILABLE on purpose (a payment provider timeout), which is not
    # "not running" and keeps its own message.
    lowered = details.lower()
    return not details or any(
        phrase in lowered
        for phrase in ("failed to connect", "connection refused", "connect failed", "unreachable")
    )


def bearer_metadata(auth: AuthSettings, principal: tuple[str, str]) -> tuple[tuple[str, str]]:
    role, subject = principal
    token = TokenCodec(auth).mint(role, subject, ttl_s=TOKEN_TTL_S)
    return (("authorization", f"Bearer {token}"),)


@dataclass(frozen=True)
class Connection:
    """What a stub call needs besides its request: the channel, the deadline and the token."""

    channel: grpc.Channel
    timeout: float
    metadata: tuple[tuple[str, str]]


@contextmanager
def connect(target: Target, auth: AuthSettings) -> Iterator[Connection]:
    """A channel to the target; a gRPC error raised in the block becomes an RpcFailure."""
    metadata = bearer_metadata(auth, target.principal)
    with grpc.insecure_channel(target.address) as channel:
        try:
            yield Connection(channel, target.timeout_s, metadata)
        except grpc.RpcError as err:
            code, details = _status_of(err)
            raise RpcFailure(describe_status(target, code, details)) from None


def _status_of(err: grpc.RpcError) -> tuple[grpc.StatusCode | None, str | None]:
    # Errors raised by a call are also grpc.Call (code, details); the stubs cannot say so.
    call: object = err
    if isinstance(call, grpc.Call):
        return call.code(), call.details()
    return None, str(err)
