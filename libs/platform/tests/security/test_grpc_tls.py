"""gRPC in the production profile: TLS required (a server without a certificate refuses to start,
a plaintext client gets nothing), reflection off; the development profile keeps both as they
were. The certificates are made by openssl for each run, never committed."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from shopstream_platform.grpc.auth import AccessPolicy
from shopstream_platform.grpc.server import GrpcServer, TlsSettingsError
from shopstream_platform.metrics import PlatformMetrics
from shopstream_platform.settings import GrpcSettings, ServiceSettings

pytestmark = pytest.mark.security


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1 / localhost signed by it."""
    d = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-ca",
             "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
             "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"))  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.pem"),
             "-CAkey", str(d / "ca.key"), "-CAcreateserial", "-days", "1",
             "-extfile", str(d / "san.ext"), "-out", str(d / "server.pem"))  # fmt: skip
    return {"ca": d / "ca.pem", "cert": d / "server.pem", "key": d / "server.key"}


def production(**grpc: object) -> GrpcSettings:
    """The gRPC settings a service loads in the production profile."""
    return ServiceSettings(
        environment="prod", grpc=GrpcSettings(host="127.0.0.1", port=0, **grpc)
    ).grpc


@pytest.fixture
async def tls_server(certificates: dict[str, Path]) -> AsyncIterator[GrpcServer]:
    settings = production(
        tls_cert_file=str(certificates["cert"]), tls_key_file=str(certificates["key"])
    )
    server = GrpcServer(
        settings, ServiceSettings().auth, PlatformMetrics("tls-test"), AccessPolicy.of({}), []
    )
    await server.start()
    await server.set_serving(True)
    try:
        yield server
    finally:
        await server.stop(0)


async def test_production_profile_requires_tls_and_turns_reflection_off() -> None:
    # async: grpc.aio's server needs the running loop (a later test may have closed the last).
    settings = production()
    assert settings.tls_required is True
    assert settings.reflection is False
    with pytest.raises(TlsSettingsError, match="GRPC__TLS_CERT_FILE"):
        GrpcServer(settings, ServiceSettings().auth, PlatformMetrics("t"), AccessPolicy.of({}), [])
    # Development keeps plaintext and reflection unless told otherwise.
    dev = ServiceSettings().grpc
    assert (dev.tls_required, dev.reflection) == (False, True)
    # An explicit choice wins over the profile (TLS terminated by a proxy in front).
    assert production(tls_required=False, reflection=False).tls_required is False


async def _health(channel: grpc.aio.Channel) -> str:
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(), timeout=5
    )
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


async def test_a_plaintext_client_gets_nothing_from_a_production_server(
    tls_server: GrpcServer, certificates: dict[str, Path]
) -> None:
    address = f"127.0.0.1:{tls_server.port}"
    async with grpc.aio.insecure_channel(address) as plaintext:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _health(plaintext)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    # A client that does not trust the CA is refused at the handshake too.
    async with grpc.aio.secure_channel(address, grpc.ssl_channel_credentials()) as untrusted:
        with pytest.raises(grpc.aio.AioRpcError) as unknown_ca:
            await _health(untrusted)
        assert unknown_ca.value.code() == grpc.StatusCode.UNAVAILABLE
    credentials = grpc.ssl_channel_credentials(root_certificates=certificates["ca"].read_bytes())
    async with grpc.aio.secure_channel(address, credentials) as trusted:
        assert await _health(trusted) == "SERVING"


async def _reflected_services(channel: grpc.aio.Channel) -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    call = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    names: list[str] = []
    async for reply in call:
        names += [s.name for s in reply.list_services_response.service]
    return names


async def test_reflection_is_off_in_production_and_on_in_development(
    tls_server: GrpcServer, certificates: dict[str, Path]
) -> None:
    credentials = grpc.ssl_channel_credentials(root_certificates=certificates["ca"].read_bytes())
    async with grpc.aio.secure_channel(f"127.0.0.1:{tls_server.port}", credentials) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as off:
            await _reflected_services(channel)
        assert off.value.code() == grpc.StatusCode.UNIMPLEMENTED
    dev = GrpcServer(
        ServiceSettings(grpc=GrpcSettings(port=0)).grpc,
        ServiceSettings().auth,
        PlatformMetrics("dev"),
        AccessPolicy.of({}),
        [],
    )
    await dev.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{dev.port}") as channel:
            assert "grpc.health.v1.Health" in await _reflected_services(channel)
    finally:
        await dev.stop(0)
