"""The services' answers, over gRPC as an admin (or the audit principal where a public answer is
noised): many calls in flight at once, each with a deadline, NOT_FOUND read as "unknown"."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import grpc
from google.protobuf.message import Message

from shopstream.ads.v1.ads_service_pb2_grpc import AdsServiceStub
from shopstream.catalog.v1.catalog_service_pb2_grpc import CatalogServiceStub
from shopstream.commerce.v1.commerce_service_pb2_grpc import CommerceServiceStub
from shopstream.creators.v1.creator_score_service_pb2_grpc import CreatorScoreServiceStub
from shopstream_platform.grpc.auth import TokenCodec
from shopstream_platform.settings import AuthSettings

ADMIN = ("admin", "reconcile")
# Exact (un-noised) ad reports are for the platform's audit principal only.
AUDIT = ("service", "audit")
IN_FLIGHT = 64
TOKEN_TTL_S = 3_600


class ServiceUnavailable(Exception):
    """A service did not answer (not running, or calls failed): its checks are skipped with
    this reason, they do not count as mismatches. `asked` is False when the caller gave no
    address for the service (a test that runs only some services)."""

    def __init__(self, message: str, *, asked: bool = True) -> None:
        super().__init__(message)
        self.asked = asked


class Services:
    """Channels to the four services; `calls` answers a list of requests of one method."""

    def __init__(
        self, addresses: Mapping[str, str], auth: AuthSettings, timeout_s: float = 10.0
    ) -> None:
        self._codec = TokenCodec(auth)
        self._timeout_s = timeout_s
        self._channels = {name: grpc.insecure_channel(addr) for name, addr in addresses.items()}
        self.addresses = dict(addresses)

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _channel(self, service: str) -> grpc.Channel:
        if service not in self._channels:
            raise ServiceUnavailable(f"{service} not asked (no address given)", asked=False)
        return self._channels[service]

    @property
    def catalog(self) -> CatalogServiceStub:
        return CatalogServiceStub(self._channel("catalog"))

    @property
    def commerce(self) -> CommerceServiceStub:
        return CommerceServiceStub(self._channel("commerce"))

    @property
    def ads(self) -> AdsServiceStub:
        return AdsServiceStub(self._channel("ads"))

    @property
    def creators(self) -> CreatorScoreServiceStub:
        return CreatorScoreServiceStub(self._channel("creator-score"))

    def metadata(self, principal: tuple[str, str]) -> tuple[tuple[str, str]]:
        token = self._codec.mint(principal[0], principal[1], ttl_s=TOKEN_TTL_S)
        return (("authorization", f"Bearer {token}"),)

    def calls(
        self,
        method: Callable[..., Any],
        requests: Sequence[Message],
        *,
        principal: tuple[str, str] = ADMIN,
        service: str,
    ) -> list[Any]:
        """The answer to each request, in order; None where the service answered NOT_FOUND."""
        metadata = self.metadata(principal)
        answers: list[Any] = []
        failures: list[str] = []
        for start in range(0, len(requests), IN_FLIGHT):
            futures = [
                method.future(r, timeout=self._timeout_s, metadata=metadata)  # type: ignore[attr-defined]
                for r in requests[start : start + IN_FLIGHT]
            ]
            for future in futures:
                try:
                    answers.append(future.result())
                except grpc.RpcError as err:
                    code, details = _status_of(err)
                    if code is grpc.StatusCode.NOT_FOUND:
                        answers.append(None)
                        continue
                    failures.append(f"{code.name if code else 'UNKNOWN'}: {details}")
                    answers.append(_FAILED)
            if failures and len(failures) == len(answers):
                raise ServiceUnavailable(
                    f"{service} at {self.addresses.get(service)}: {failures[0]}"
                )
        if failures:
            raise ServiceUnavailable(
                f"{service}: {len(failures)} of {len(requests)} calls failed, e.g. {failures[0]}"
            )
        return answers

    def call(
        self,
        method: Callable[..., Any],
        request: Message,
        *,
        principal: tuple[str, str] = ADMIN,
        service: str,
    ) -> Any:
        return self.calls(method, [request], principal=principal, service=service)[0]


_FAILED = object()


def _status_of(err: grpc.RpcError) -> tuple[grpc.StatusCode | None, str]:
    # Errors raised by a call are also grpc.Call (code, details); the stubs cannot say so.
    call: object = err
    if isinstance(call, grpc.Call):
        return call.code(), call.details() or ""
    return None, str(err)
