"""gRPC server bootstrap on grpc.aio: health with real status, reflection, interceptor, TLS."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from shopstream_platform.grpc.auth import AccessPolicy, TokenCodec
from shopstream_platform.grpc.interceptor import PlatformInterceptor
from shopstream_platform.metrics import PlatformMetrics
from shopstream_platform.settings import AuthSettings, GrpcSettings

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass(frozen=True)
class ServiceBinding:
    """A servicer and the generated function that registers it, e.g. add_CatalogServiceServicer_to_server."""

    full_name: str
    register: Callable[[Any, grpc.aio.Server], None]
    servicer: Any


class TlsSettingsError(RuntimeError):
    """The server must speak TLS (production profile) but has no certificate and key."""


def server_credentials(settings: GrpcSettings) -> grpc.ServerCredentials | None:
    """TLS credentials from the PEM files, or None for plaintext (refused when TLS is required).

    Read at construction: a missing or unreadable file fails start-up, not the first RPC.
    """
    if bool(settings.tls_cert_file) != bool(settings.tls_key_file):
        raise TlsSettingsError("gRPC TLS needs both GRPC__TLS_CERT_FILE and GRPC__TLS_KEY_FILE")
    if not (settings.tls_cert_file and settings.tls_key_file):
        if settings.tls_required:
            raise TlsSettingsError(
                "gRPC TLS is required (production profile): set GRPC__TLS_CERT_FILE and "
                "GRPC__TLS_KEY_FILE, or GRPC__TLS_REQUIRED=false behind a TLS-terminating proxy"
            )
        return None
    key = Path(settings.tls_key_file).read_bytes()
    cert = Path(settings.tls_cert_file).read_bytes()
    return grpc.ssl_server_credentials([(key, cert)])


class GrpcServer:
    def __init__(
        self,
        settings: GrpcSettings,
        auth_settings: AuthSettings,
        metrics: PlatformMetrics,
        policy: AccessPolicy,
        bindings: list[ServiceBinding],
    ) -> None:
        self._settings = settings
        self._bindings = bindings
        self.health = HealthServicer()
        self._server = grpc.aio.server(
            interceptors=[PlatformInterceptor(metrics, TokenCodec(auth_settings), policy)],
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", 8 * 1024 * 1024),
            ],
        )
        self.port = 0
        self._tls = server_credentials(settings)
        # Unset means dev (ServiceSettings resolves it by profile: off in production).
        self._reflection = settings.reflection is not False

    @property
    def service_names(self) -> list[str]:
        return [b.full_name for b in self._bindings]

    async def start(self) -> int:
        """Start listening with every service NOT_SERVING; returns the bound port."""
        for binding in self._bindings:
            binding.register(binding.servicer, self._server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        if self._reflection:
            names = (
                *self.service_names,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            )
            reflection.enable_server_reflection(names, self._server)
        await self.set_serving(False)
        address = f"{self._settings.host}:{self._settings.port}"
        if self._tls is not None:
            self.port = self._server.add_secure_port(address, self._tls)
        else:
            self.port = self._server.add_insecure_port(address)
        if self.port == 0:
            raise RuntimeError(f"cannot bind gRPC to {address}")
        await self._server.start()
        log.info("grpc listening", extra={"address": f"{self._settings.host}:{self.port}"})
        return self.port

    async def set_serving(self, serving: bool) -> None:
        status = SERVING if serving else NOT_SERVING
        # "" is the whole server, as grpc_health_probe and Kubernetes ask by default.
        for name in ("", *self.service_names):
            await self.health.set(name, status)

    async def stop(self, grace_s: float | None = None) -> None:
        """NOT_SERVING first so load balancers drain us, then let in-flight RPCs finish."""
        await self.health.enter_graceful_shutdown()
        await self._server.stop(self._settings.shutdown_grace_s if grace_s is None else grace_s)
