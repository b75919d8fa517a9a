"""gRPC over TLS in the prod overlay (components/grpc-tls), checked on the rendered manifests.

Every workload mounts its own cert-manager certificate read-only, its settings require TLS and
point at the mounted files, each certificate names every Service that reaches its pods, the
certificates chain to the namespace CA, and the probes verify the certificate. The dev overlay
stays plaintext. That the probe command works against a real TLS server is
test_health_check_tls.py's part.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import shlex
from pathlib import PurePosixPath
from types import ModuleType
from typing import Any

import pytest
from deploy_support import (
    REPO,
    SERVICES,
    Resource,
    Service,
    by_name,
    load_with,
    of_kind,
    pod_environment,
)

TLS_OVERLAY = "prod"
CERT_MANAGER_API = "cert-manager.io/v1"
HEALTH_CHECK = REPO / "deploy" / "images" / "grpc_health_check.py"
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
# The cluster domain the prod overlay assumes (its DNS-name patches say so).
CLUSTER_DOMAIN = "cluster.local"


def health_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location("grpc_health_check", HEALTH_CHECK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pod_template(resources: list[Resource], svc: Service) -> dict[str, Any]:
    kind = "StatefulSet" if svc.stream_worker else "Deployment"
    template: dict[str, Any] = by_name(resources, kind, svc.name)["spec"]["template"]
    return template


def pod_spec(resources: list[Resource], svc: Service) -> dict[str, Any]:
    spec: dict[str, Any] = pod_template(resources, svc)["spec"]
    return spec


def main_container(resources: list[Resource], svc: Service) -> dict[str, Any]:
    (found,) = [c for c in pod_spec(resources, svc)["containers"] if c["name"] == svc.name]
    return found


def certificate_of(resources: list[Resource], svc: Service) -> Resource:
    """The Certificate whose secret the service's pods mount (exactly one)."""
    mounted = {
        v["secret"]["secretName"] for v in pod_spec(resources, svc)["volumes"] if "secret" in v
    }
    found = [c for c in of_kind(resources, "Certificate") if c["spec"]["secretName"] in mounted]
    assert len(found) == 1, f"{svc.name} mounts {sorted(mounted)}"
    return found[0]


def tls_mount(resources: list[Resource], svc: Service) -> dict[str, Any]:
    """The volume mount of the service's certificate secret."""
    secret = certificate_of(resources, svc)["spec"]["secretName"]
    (volume,) = [
        v
        for v in pod_spec(resources, svc)["volumes"]
        if v.get("secret", {}).get("secretName") == secret
    ]
    (mount,) = [
        m for m in main_container(resources, svc)["volumeMounts"] if m["name"] == volume["name"]
    ]
    # A volume that picks keys (`items`) could rename or drop what the settings point at.
    assert "items" not in volume["secret"], volume
    return mount


def hours(duration: str) -> float:
    """A cert-manager duration (Go's time.ParseDuration: 2160h, 90m, 1h30m) in hours."""
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert parts is not None and duration, duration
    h, m, s = (int(p or 0) for p in parts.groups())
    return h + m / 60 + s / 3600


def names_that_reach(resources: list[Resource], svc: Service) -> set[str]:
    """The DNS names a client dials the service's gRPC port by: each Service selecting its pods,
    short and namespace-qualified; for a headless Service, each pod under it (a wildcard)."""
    pod_labels = pod_template(resources, svc)["metadata"]["labels"]
    names: set[str] = set()
    for service in of_kind(resources, "Service"):
        spec = service["spec"]
        if not spec.get("selector") or not spec["selector"].items() <= pod_labels.items():
            continue
        if not any(p["name"] == "grpc" for p in spec["ports"]):
            continue
        name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
        prefix = "*." if spec.get("clusterIP") == "None" else ""
        for suffix in ("", f".{namespace}.svc", f".{namespace}.svc.{CLUSTER_DOMAIN}"):
            names.add(f"{prefix}{name}{suffix}")
    return names


def uncovered(resources: list[Resource]) -> dict[str, list[str]]:
    """Per service, the names that reach it and that its certificate does not carry."""
    missing = {}
    for svc in SERVICES:
        have = set(certificate_of(resources, svc)["spec"].get("dnsNames", []))
        if lacking := sorted(names_that_reach(resources, svc) - have):
            missing[svc.name] = lacking
    return missing


@pytest.fixture
def prod(rendered: dict[str, list[Resource]]) -> list[Resource]:
    return rendered[TLS_OVERLAY]


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_every_pod_mounts_its_own_certificate_read_only(prod: list[Resource], svc: Service) -> None:
    certificate = certificate_of(prod, svc)
    assert svc.name in certificate["spec"]["dnsNames"]
    assert tls_mount(prod, svc)["readOnly"] is True
    # Its own: no other workload mounts this secret.
    others = [s for s in SERVICES if s != svc]
    assert all(certificate_of(prod, o) is not certificate for o in others)


def test_no_pod_mounts_the_ca_key(prod: list[Resource]) -> None:
    ca_secrets = {
        c["spec"]["secretName"] for c in of_kind(prod, "Certificate") if c["spec"].get("isCA")
    }
    assert ca_secrets
    for svc in SERVICES:
        for volume in pod_spec(prod, svc)["volumes"]:
            assert volume.get("secret", {}).get("secretName") not in ca_secrets, svc.name


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_tls_is_required_and_reads_the_mounted_files(
    prod: list[Resource], svc: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_with(svc, pod_environment(prod, svc), monkeypatch)
    mount = PurePosixPath(tls_mount(prod, svc)["mountPath"])
    assert settings.grpc.tls_required is True
    # The keys cert-manager writes into a kubernetes.io/tls secret.
    assert settings.grpc.tls_cert_file == str(mount / "tls.crt")
    assert settings.grpc.tls_key_file == str(mount / "tls.key")
    # Reflection follows the production profile: off.
    assert settings.grpc.reflection is False


def test_certificates_name_every_service_that_reaches_their_pods(prod: list[Resource]) -> None:
    assert uncovered(prod) == {}
    # A headless Service's pods are named by a wildcard: one per stream worker.
    workers = [s for s in SERVICES if s.stream_worker]
    assert all(any(n.startswith("*.") for n in names_that_reach(prod, s)) for s in workers)


def test_the_coverage_check_sees_a_missing_name(prod: list[Resource]) -> None:
    broken = copy.deepcopy(prod)
    certificate = certificate_of(broken, SERVICES[2])
    certificate["spec"]["dnsNames"].remove("*.ads-pods.shopstream.svc")
    assert uncovered(broken) == {"ads": ["*.ads-pods.shopstream.svc"]}


def test_certificates_chain_to_the_namespace_ca(prod: list[Resource]) -> None:
    issuers = {i["metadata"]["name"]: i for i in of_kind(prod, "Issuer")}
    certificates = of_kind(prod, "Certificate")
    for resource in [*issuers.values(), *certificates]:
        assert resource["apiVersion"] == CERT_MANAGER_API, resource["metadata"]["name"]
    (ca,) = [c for c in certificates if c["spec"].get("isCA")]
    # The CA is signed by the self-signed Issuer, and that Issuer signs nothing else.
    ca_issuer = issuers[ca["spec"]["issuerRef"]["name"]]
    assert "selfSigned" in ca_issuer["spec"]
    assert ca["spec"]["privateKey"]["rotationPolicy"] == "Never"
    for svc in SERVICES:
        spec = certificate_of(prod, svc)["spec"]
        assert spec["issuerRef"]["kind"] == "Issuer"
        issuer = issuers[spec["issuerRef"]["name"]]
        assert issuer["spec"]["ca"]["secretName"] == ca["spec"]["secretName"], svc.name
        assert not spec.get("isCA")
        assert "server auth" in spec["usages"]
        assert spec["privateKey"]["rotationPolicy"] == "Always"
        # Renewed well before it ends (and cert-manager refuses a renewBefore >= duration).
        assert 0 < hours(spec["renewBefore"]) <= hours(spec["duration"]) / 2
    for certificate in certificates:
        assert certificate["spec"]["secretName"] and certificate["spec"]["issuerRef"]["name"]


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_probes_verify_the_certificate_over_tls(prod: list[Resource], svc: Service) -> None:
    main = main_container(prod, svc)
    mount = PurePosixPath(tls_mount(prod, svc)["mountPath"])
    names = certificate_of(prod, svc)["spec"]["dnsNames"]
    dockerfile = (REPO / "deploy" / "images" / svc.name / "Dockerfile").read_text()
    (installed,) = re.findall(r"^COPY deploy/images/grpc_health_check.py (\S+)$", dockerfile, re.M)
    check = health_check()
    for probe in PROBES:
        assert "grpc" not in main[probe], probe
        command = main[probe]["exec"]["command"]
        assert command[:2] == ["python", installed], probe
        args = check.parse(command[1:])
        assert args.port_env == f"{svc.env_prefix}GRPC__PORT"
        assert str(args.tls_ca) == str(mount / "ca.crt"), shlex.join(command)
        assert args.server_name in names and "*" not in args.server_name
        # The check's own deadline, plus an interpreter's start, inside the probe's timeout.
        assert main[probe]["timeoutSeconds"] >= check.RPC_TIMEOUT_S + 2, probe


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_dev_serves_plaintext(
    rendered: dict[str, list[Resource]], svc: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev = rendered["dev"]
    assert of_kind(dev, "Certificate", "Issuer") == []
    settings = load_with(svc, pod_environment(dev, svc), monkeypatch)
    assert settings.grpc.tls_required is False
    assert settings.grpc.tls_cert_file is None
