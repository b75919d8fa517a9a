"""gRPC clients of the four services: a bearer token per acting principal, a deadline on every
call, retries with backoff on UNAVAILABLE, and a bound on calls in flight."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import grpc
from google.protobuf.message import Message
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shopstream.ads.v1 import ads_service_pb2_grpc
from shopstream.catalog.v1 import catalog_service_pb2_grpc
from shopstream.commerce.v1 import commerce_service_pb2_grpc
from shopstream.creators.v1 import creator_score_service_pb2_grpc
from shopstream_platform.grpc.auth import TokenCodec
from shopstream_simulator.ledger import Ledger

if TYPE_CHECKING:
    from shopstream.ads.v1.ads_service_pb2_grpc import AdsServiceAsyncStub
    from shopstream.catalog.v1.catalog_service_pb2_grpc import CatalogServiceAsyncStub
    from shopstream.commerce.v1.commerce_service_pb2_grpc import CommerceServiceAsyncStub
    from shopstream.creators.v1.creator_score_service_pb2_grpc import (
        CreatorScoreServiceAsyncStub,
    )

Req = TypeVar("Req", bound=Message)
Resp = TypeVar("Resp", bound=Message)

Principal = tuple[str, str]
ADMIN: Principal = ("admin", "simulator-trust-and-safety")
EDGE: Principal = ("service", "simulator-edge")
# The platform's audit principal: the only caller that reads exact attributed conversions (the
# live view shows the day's campaign GMV and ROAS as the platform sees them; advertisers and
# operators get released cells, withheld until the day is over). docs/ads.md.
AUDIT: Principal = ("service", "audit")
TOKEN_TTL_S = 3_600
TOKEN_REFRESH_S = 1_800
# The codes a retry can help with: the service is starting, restarting or overloaded.
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})
# Failures after which the server may or may not have made the change.
AMBIGUOUS = frozenset({grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE})


def status_of(error: BaseException) -> grpc.StatusCode | None:
    return error.code() if isinstance(error, aio.AioRpcError) else None


def details_of(error: BaseException) -> str:
    return (error.details() or "") if isinstance(error, aio.AioRpcError) else str(error)


class Rpc:
    def __init__(
        self,
        codec: TokenCodec,
        ledger: Ledger,
        *,
        concurrency: int,
        timeout_s: float,
        attempts: int,
    ) -> None:
        self._codec = codec
        self._ledger = ledger
        self._slots = asyncio.Semaphore(concurrency)
        self._timeout_s = timeout_s
        self._attempts = attempts
        self._tokens: dict[Principal, tuple[float, str]] = {}

    def metadata(self, principal: Principal) -> tuple[tuple[str, str], ...]:
        minted = self._tokens.get(principal)
        now = time.monotonic()
        if minted is None or now - minted[0] > TOKEN_REFRESH_S:
            minted = (now, self._codec.mint(principal[0], principal[1], ttl_s=TOKEN_TTL_S))
            self._tokens[principal] = minted
        return (("authorization", f"Bearer {minted[1]}"),)

    async def __call__(
        self,
        method: aio.UnaryUnaryMultiCallable[Req, Resp],
        request: Req,
        *,
        as_: Principal | None = None,
        timeout_s: float | None = None,
        idempotent: bool = True,
        attempts: int | None = None,
        expected: frozenset[grpc.StatusCode] = frozenset(),
    ) -> Resp:
        """Call with a deadline; retry UNAVAILABLE (and DEADLINE_EXCEEDED when the call is
        idempotent) with exponential backoff. Raises the last AioRpcError; codes in `expected`
        are answers the caller handles, not errors worth counting."""
        tries = attempts or self._attempts
        metadata = self.metadata(as_) if as_ is not None else None
        for attempt in range(1, tries + 1):
            try:
                async with self._slots:
                    return await method(
                        request, timeout=timeout_s or self._timeout_s, metadata=metadata
                    )
            except aio.AioRpcError as exc:
                code = exc.code()
                retry = code in RETRYABLE or (
                    idempotent and code is grpc.StatusCode.DEADLINE_EXCEEDED
                )
                if not retry or attempt == tries:
                    if code not in expected:
                        self._ledger.rpc_errors[f"{_name(method)} {code.name}"] += 1
                    raise
                self._ledger.rpc_errors[f"{_name(method)} {code.name} (retried)"] += 1
                # Jitter only spreads retries in time; it decides nothing in the simulated world.
                await asyncio.sleep(min(3.0, 0.2 * 2 ** (attempt - 1)) * (0.5 + random.random()))
        raise AssertionError("unreachable")


def _name(method: object) -> str:
    raw = getattr(method, "_method", b"")
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return text.rsplit("/", 1)[-1] or "call"


@dataclass
class Services:
    """Channels and stubs of the four services; `available` says which answered their health."""

    channels: dict[str, aio.Channel]
    catalog: CatalogServiceAsyncStub
    commerce: CommerceServiceAsyncStub
    ads: AdsServiceAsyncStub
    creators: CreatorScoreServiceAsyncStub
    available: dict[str, str]

    @classmethod
    def connect(cls, addresses: dict[str, str]) -> Services:
        channels = {name: aio.insecure_channel(address) for name, address in addresses.items()}
        return cls(
            channels=channels,
            catalog=catalog_service_pb2_grpc.CatalogServiceStub(channels["catalog"]),
            commerce=commerce_service_pb2_grpc.CommerceServiceStub(channels["commerce"]),
            ads=ads_service_pb2_grpc.AdsServiceStub(channels["ads"]),
            creators=creator_score_service_pb2_grpc.CreatorScoreServiceStub(
                channels["creator-score"]
            ),
            available={},
        )

    async def health(self, name: str, timeout_s: float = 2.0) -> str:
        """SERVING, NOT_SERVING, or UNREACHABLE."""
        try:
            response = await health_pb2_grpc.HealthStub(self.channels[name]).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout_s
            )
        except aio.AioRpcError:
            return "UNREACHABLE"
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))

    async def probe(self, wait_s: float = 0.0) -> dict[str, str]:
        """Health of every service; waits up to `wait_s` for each to report SERVING."""
        deadline = time.monotonic() + wait_s
        while True:
            states = await asyncio.gather(*(self.health(n) for n in self.channels))
            self.available = dict(zip(self.channels, states, strict=True))
            if all(s == "SERVING" for s in states) or time.monotonic() >= deadline:
                return self.available
            await asyncio.sleep(0.5)

    def serving(self, name: str) -> bool:
        return self.available.get(name) == "SERVING"

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.channels.values()))
