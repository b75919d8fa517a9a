"""The image's health check against a real TLS gRPC server: the prod probe is run, not just rendered.

The server is the platform's own (shopstream_platform.grpc.server.GrpcServer, TLS required) with a
certificate shaped as cert-manager issues it from the namespace CA (components/grpc-tls): an ECDSA
P-256 key in PKCS#8, the service's DNS names, server auth, signed by a separate CA whose
certificate is the secret's ca.crt. openssl makes them (no Python crypto package needed).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from deploy_support import REPO, Resource, by_name

from shopstream_platform.grpc.auth import AccessPolicy
from shopstream_platform.grpc.server import GrpcServer
from shopstream_platform.metrics import PlatformMetrics
from shopstream_platform.settings import AuthSettings, GrpcSettings

HEALTH_CHECK = REPO / "deploy" / "images" / "grpc_health_check.py"
PORT_ENV = "SHOPSTREAM_CATALOG_GRPC__PORT"
# Where the prod overlay mounts the certificate secret (components/grpc-tls/pods.yaml) and where
# the image installs the check; the rendered probe's paths are mapped onto this test's files.
MOUNT = "/var/run/shopstream/grpc-tls"
INSTALLED_CHECK = "/opt/shopstream/grpc_health_check.py"


def openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"openssl {' '.join(args)}:\n{result.stderr}"


@dataclass(frozen=True)
class Secret:
    """A directory laid out as the mounted <service>-grpc-tls secret."""

    path: Path

    @property
    def ca(self) -> Path:
        return self.path / "ca.crt"

    @property
    def cert(self) -> Path:
        return self.path / "tls.crt"

    @property
    def key(self) -> Path:
        return self.path / "tls.key"


def make_ca(directory: Path) -> Path:
    directory.mkdir(parents=True)
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", "ca.key", cwd=directory)  # fmt: skip
    openssl("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=shopstream gRPC CA",
            "-days", "30", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "ca.crt",
            cwd=directory)  # fmt: skip
    return directory


def issue(ca: Path, directory: Path, dns_names: list[str], days: int = 30) -> Secret:
    """A service certificate from `ca`; negative `days` makes one that has already ended."""
    directory.mkdir(parents=True)
    (directory / "ext.cnf").write_text(
        "basicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        f"subjectAltName={','.join('DNS:' + n for n in dns_names)}\n"
    )
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", "tls.key", cwd=directory)  # fmt: skip
    openssl("req", "-new", "-key", "tls.key", "-subj", f"/CN={dns_names[0]}",
            "-out", "tls.csr", cwd=directory)  # fmt: skip
    openssl("x509", "-req", "-in", "tls.csr", "-CA", str(ca / "ca.crt"),
            "-CAkey", str(ca / "ca.key"), "-set_serial", "2", "-days", str(days),
            "-extfile", "ext.cnf", "-out", "tls.crt", cwd=directory)  # fmt: skip
    (directory / "ca.crt").write_bytes((ca / "ca.crt").read_bytes())
    assert b"BEGIN PRIVATE KEY" in (directory / "tls.key").read_bytes()  # PKCS#8, as mounted
    return Secret(directory)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Secret]:
    root = tmp_path_factory.mktemp("pki")
    ca, other_ca = make_ca(root / "ca"), make_ca(root / "other-ca")
    names = ["catalog", "catalog.shopstream.svc", "catalog.shopstream.svc.cluster.local"]
    return {
        "catalog": issue(ca, root / "catalog", names),
        "expired": issue(ca, root / "expired", names, days=-1),
        "other-ca": issue(other_ca, root / "other-ca-catalog", names),
    }


@asynccontextmanager
async def grpc_server(secret: Secret | None, serving: bool = True) -> AsyncIterator[int]:
    """The platform's gRPC server on a free loopback port: TLS required when given a secret."""
    settings = GrpcSettings(
        host="127.0.0.1",
        port=0,
        reflection=False,
        shutdown_grace_s=0,
        tls_required=secret is not None,
        tls_cert_file=str(secret.cert) if secret else None,
        tls_key_file=str(secret.key) if secret else None,
    )
    server = GrpcServer(
        settings, AuthSettings(), PlatformMetrics(service="catalog"), AccessPolicy.of({}), []
    )
    port = await server.start()
    await server.set_serving(serving)
    try:
        yield port
    finally:
        await server.stop(0)


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str


async def run_check(port: int, *args: str) -> Outcome:
    """The health check as a probe runs it: its own interpreter, the port from the variable."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HEALTH_CHECK),
        PORT_ENV,
        *args,
        env={**os.environ, PORT_ENV: str(port)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return Outcome(process.returncode, stdout.decode().strip(), stderr.decode().strip())


def tls_args(secret: Secret, name: str = "catalog") -> list[str]:
    return ["--tls-ca", str(secret.ca), "--server-name", name]


async def test_the_rendered_prod_probe_passes_against_a_tls_server(
    rendered: dict[str, list[Resource]], pki: dict[str, Secret]
) -> None:
    secret = pki["catalog"]
    main = by_name(rendered["prod"], "Deployment", "catalog")["spec"]["template"]["spec"]
    (container,) = [c for c in main["containers"] if c["name"] == "catalog"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        command = container[probe]["exec"]["command"]
        # The probe exactly as rendered, with the image's paths mapped onto this test's files.
        assert command[:3] == ["python", INSTALLED_CHECK, PORT_ENV], command
        args = [a.replace(MOUNT, str(secret.path)) for a in command[3:]]
        assert str(secret.ca) in args
        async with grpc_server(secret) as port:
            outcome = await run_check(port, *args)
        assert (outcome.returncode, outcome.stdout) == (0, "SERVING"), outcome


async def test_a_tls_server_that_is_not_serving_fails_the_check(pki: dict[str, Secret]) -> None:
    async with grpc_server(pki["catalog"], serving=False) as port:
        outcome = await run_check(port, *tls_args(pki["catalog"]))
    assert (outcome.returncode, outcome.stdout) == (1, "NOT_SERVING"), outcome


async def test_plaintext_cannot_ask_a_tls_server(pki: dict[str, Secret]) -> None:
    # Why the kubelet's built-in gRPC probe (plaintext) is not used against TLS pods.
    async with grpc_server(pki["catalog"]) as port:
        outcome = await run_check(port)
    assert outcome.returncode == 1 and "UNAVAILABLE" in outcome.stderr, outcome


@pytest.mark.parametrize(
    ("secret", "name", "reason"),
    [
        # A name the certificate does not carry.
        ("catalog", "commerce", "Hostname Verification Check failed"),
        # Issued by a CA the check does not trust.
        ("other-ca", "catalog", "unable to get local issuer certificate"),
        # Past its end: liveness restarts a pod that kept serving it.
        ("expired", "catalog", "certificate has expired"),
    ],
)
async def test_the_check_verifies_the_certificate(
    pki: dict[str, Secret], secret: str, name: str, reason: str
) -> None:
    # The check trusts the namespace CA (catalog's ca.crt) whatever the server presents.
    async with grpc_server(pki[secret]) as port:
        outcome = await run_check(port, *tls_args(pki["catalog"], name))
    (verdict,) = [line for line in outcome.stderr.splitlines() if line.startswith("unhealthy:")]
    assert outcome.returncode == 1 and "UNAVAILABLE" in verdict and reason in verdict, outcome


async def test_a_missing_ca_file_fails_the_check(pki: dict[str, Secret], tmp_path: Path) -> None:
    async with grpc_server(pki["catalog"]) as port:
        outcome = await run_check(
            port, "--tls-ca", str(tmp_path / "absent.crt"), "--server-name", "catalog"
        )
    assert outcome.returncode == 1 and "absent.crt" in outcome.stderr, outcome


async def test_plaintext_still_works_for_the_images_healthcheck() -> None:
    # Docker's HEALTHCHECK and compose run the check without TLS arguments.
    async with grpc_server(None) as port:
        outcome = await run_check(port)
    assert (outcome.returncode, outcome.stdout) == (0, "SERVING"), outcome


def test_tls_arguments_go_together() -> None:
    result = subprocess.run(
        [sys.executable, str(HEALTH_CHECK), PORT_ENV, "--tls-ca", "ca.crt"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "go together" in result.stderr
