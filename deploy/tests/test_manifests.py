"""The Kubernetes manifests: each overlay renders, core kinds pass the Kubernetes schemas, Strimzi
kinds pass the operator's model, and the workloads keep the properties the issue asks for."""

from __future__ import annotations

import importlib
import json
import subprocess
from typing import Any

import kubernetes_validate
import pytest
from deploy_support import (
    K8S,
    OVERLAYS,
    SERVICES,
    STRIMZI_CLASSPATH,
    Resource,
    Service,
    by_name,
    gen_kafka,
    kustomize_build,
    of_kind,
    pod_environment,
)

from shopstream_platform.kafka.topics import load_registry

# The oldest Kubernetes the manifests promise to work on (gRPC probes are GA since 1.27).
KUBERNETES_VERSION = "1.30.0"
STRIMZI_KINDS = ("Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser")
PROMETHEUS_OPERATOR_KINDS = ("ServiceMonitor",)
# Checked in test_grpc_tls.py: kubernetes-validate knows no cert-manager schema.
CERT_MANAGER_KINDS = ("Certificate", "Issuer")
GRPC_PORT = 50051
# Bounds of a service's drain after SIGTERM (shopstream_platform/runtime.py): consumers 30 s,
# outbox relay 30 s, producer flush 30 s, after the gRPC grace period.
DRAIN_BOUNDS_S = 30 + 30 + 30


def workload(resources: list[Resource], svc: Service) -> Resource:
    return by_name(resources, "StatefulSet" if svc.stream_worker else "Deployment", svc.name)


def container(resources: list[Resource], svc: Service) -> dict[str, Any]:
    (found,) = [
        c
        for c in workload(resources, svc)["spec"]["template"]["spec"]["containers"]
        if c["name"] == svc.name
    ]
    return found


def test_the_base_renders_too() -> None:
    kinds = {r["kind"] for r in kustomize_build(K8S / "base")}
    assert {"Deployment", "StatefulSet", "Kafka", "KafkaTopic", "KafkaUser"} <= kinds


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_core_kinds_pass_the_kubernetes_schemas(
    rendered: dict[str, list[Resource]], overlay: str
) -> None:
    problems = []
    core = [
        r
        for r in rendered[overlay]
        if r["kind"] not in STRIMZI_KINDS + PROMETHEUS_OPERATOR_KINDS + CERT_MANAGER_KINDS
    ]
    assert len(core) > 20
    for resource in core:
        try:
            # strict: unknown fields are errors too.
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            problems.append(
                f"{resource['kind']}/{resource['metadata']['name']}: {path}: {exc.message}"
            )
    assert problems == []


def test_the_schema_check_catches_a_wrong_field() -> None:
    broken = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {
                "metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "x", "image": "x", "imagePullPolcy": "Always"}]},
            },
        },
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def strimzi_check(java: str, resources: list[Resource]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [java, "-cp", STRIMZI_CLASSPATH, "dev.shopstream.deploy.StrimziCheck"],
        input=json.dumps(resources),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_strimzi_kinds_pass_the_operator_model(
    rendered: dict[str, list[Resource]], overlay: str, java: str
) -> None:
    strimzi = of_kind(rendered[overlay], *STRIMZI_KINDS)
    result = strimzi_check(java, strimzi)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(strimzi)} Strimzi resources checked, 0 problems" in result.stdout


def test_the_strimzi_check_catches_mistakes(rendered: dict[str, list[Resource]], java: str) -> None:
    prod = rendered["prod"]
    topic = json.loads(json.dumps(by_name(prod, "KafkaTopic", "commerce.orders.v1")))
    topic["spec"]["partitions"] = 0
    user = json.loads(json.dumps(by_name(prod, "KafkaUser", "catalog")))
    user["spec"]["authorization"]["acls"][0]["operations"] = ["Wrte"]
    kafka = json.loads(json.dumps(by_name(prod, "Kafka", "shopstream")))
    kafka["spec"]["kafka"]["listners"] = kafka["spec"]["kafka"].pop("listeners")
    result = strimzi_check(java, [topic, user, kafka])
    assert result.returncode == 1
    assert "spec.partitions = 0 is below the minimum 1" in result.stdout
    assert '"Wrte" is not accepted by the model' in result.stdout
    assert "unknown field(s) [listners]" in result.stdout


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_monitors_scrape_a_port_their_service_has(
    rendered: dict[str, list[Resource]], overlay: str
) -> None:
    resources = rendered[overlay]
    for monitor in of_kind(resources, "ServiceMonitor"):
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        wanted = monitor["spec"]["selector"]["matchLabels"]
        services = [
            s
            for s in of_kind(resources, "Service")
            if wanted.items() <= s["metadata"].get("labels", {}).items()
        ]
        assert len(services) == 1, monitor["metadata"]["name"]
        ports = {p["name"] for p in services[0]["spec"]["ports"]}
        assert {e["port"] for e in monitor["spec"]["endpoints"]} <= ports


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_each_service_has_its_workload_kinds(
    rendered: dict[str, list[Resource]], overlay: str, svc: Service
) -> None:
    resources = rendered[overlay]
    workload(resources, svc)
    for kind in ("Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "ServiceMonitor"):
        by_name(resources, kind, svc.name)
    hpa = by_name(resources, "HorizontalPodAutoscaler", svc.name)
    assert hpa["spec"]["scaleTargetRef"]["kind"] == workload(resources, svc)["kind"]


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_pods_probe_grpc_health_and_drain_before_being_killed(
    rendered: dict[str, list[Resource]], overlay: str, svc: Service
) -> None:
    resources = rendered[overlay]
    main = container(resources, svc)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if overlay == "dev":
            assert main[probe]["grpc"] == {"port": GRPC_PORT}, probe
        else:
            # Over TLS the kubelet's gRPC probe cannot ask; the image's health check does, on the
            # port the service reads (its TLS arguments: test_grpc_tls.py).
            assert "grpc" not in main[probe], probe
            command = main[probe]["exec"]["command"]
            assert command[2] == f"{svc.env_prefix}GRPC__PORT", probe
    assert {"containerPort": GRPC_PORT, "name": "grpc", "protocol": "TCP"} in main["ports"]
    grace = float(settings_value(resources, svc, "GRPC__SHUTDOWN_GRACE_S"))
    pod = workload(resources, svc)["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] >= grace + DRAIN_BOUNDS_S


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_pods_run_as_non_root_on_a_read_only_root(
    rendered: dict[str, list[Resource]], overlay: str, svc: Service
) -> None:
    resources = rendered[overlay]
    pod = workload(resources, svc)["spec"]["template"]["spec"]
    main = container(resources, svc)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    for key in ("requests", "limits"):
        assert set(main["resources"][key]) == {"cpu", "memory"}, key
    mounts = {m["mountPath"] for m in main["volumeMounts"]}
    assert "/tmp" in mounts
    if svc.stream_worker:
        data_dir = settings_value(resources, svc, "DATA_DIR")
        assert any(data_dir.startswith(m + "/") for m in mounts), data_dir


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("svc", [s for s in SERVICES if s.stream_worker], ids=lambda s: s.name)
def test_stream_workers_are_statefulsets_bounded_by_their_partitions(
    rendered: dict[str, list[Resource]], overlay: str, svc: Service
) -> None:
    resources = rendered[overlay]
    worker = by_name(resources, "StatefulSet", svc.name)
    claims = {c["metadata"]["name"] for c in worker["spec"]["volumeClaimTemplates"]}
    assert claims == {"state"}
    # A worker per table partition at most (a further one would get no partition and no state).
    partitions = importlib.import_module(f"{svc.module}.stream.topics").TABLE_PARTITIONS
    hpa = by_name(resources, "HorizontalPodAutoscaler", svc.name)
    assert worker["spec"]["replicas"] <= hpa["spec"]["maxReplicas"] <= partitions
    # Each pod's combiner needs its own transactional id: the pod name, stable across restarts.
    env = {e["name"]: e for e in container(resources, svc)["env"]}
    instance = env[f"{svc.env_prefix}COMBINER__INSTANCE"]
    assert instance["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("svc", [s for s in SERVICES if not s.stream_worker], ids=lambda s: s.name)
def test_stateless_services_scale_no_further_than_their_partitions(
    rendered: dict[str, list[Resource]], overlay: str, svc: Service
) -> None:
    hpa = by_name(rendered[overlay], "HorizontalPodAutoscaler", svc.name)
    widest = max(load_registry().get(t).partitions for t in gen_kafka().READS[svc.name])
    assert hpa["spec"]["maxReplicas"] <= widest


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_the_database_url_comes_from_a_secret(
    rendered: dict[str, list[Resource]], overlay: str, svc: Service
) -> None:
    env = {e["name"]: e for e in container(rendered[overlay], svc)["env"]}
    source = env[f"{svc.env_prefix}DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert source["name"].startswith("shopstream-postgres")
    assert source["key"] == svc.name
    secrets = [
        s for s in of_kind(rendered[overlay], "Secret") if s["metadata"]["name"] == source["name"]
    ]
    if overlay == "dev":
        assert len(secrets) == 1
    for configmap in of_kind(rendered[overlay], "ConfigMap"):
        assert not any(k.endswith("DATABASE_URL") for k in configmap.get("data", {}))


def test_prod_has_three_brokers_rf3_min_isr2_and_acls(rendered: dict[str, list[Resource]]) -> None:
    prod = rendered["prod"]
    kafka = by_name(prod, "Kafka", "shopstream")["spec"]["kafka"]
    pools = of_kind(prod, "KafkaNodePool")
    brokers = sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"]["roles"])
    controllers = sum(p["spec"]["replicas"] for p in pools if "controller" in p["spec"]["roles"])
    assert (brokers, controllers) == (3, 3)
    assert kafka["config"]["default.replication.factor"] == 3
    assert kafka["config"]["min.insync.replicas"] == 2
    assert kafka["authorization"]["type"] == "simple"
    assert all(lst["authentication"]["type"] == "scram-sha-512" for lst in kafka["listeners"])
    for topic in of_kind(prod, "KafkaTopic"):
        assert topic["spec"]["replicas"] == 3
        assert topic["spec"]["config"]["min.insync.replicas"] == 2


def settings_value(resources: list[Resource], svc: Service, field: str) -> str:
    """The value a service's pod gets for one setting (its own variable wins over the shared one)."""
    env = pod_environment(resources, svc)
    own, shared = svc.env_prefix + field, "SHOPSTREAM_" + field
    assert own in env or shared in env, f"{svc.name} sets no {field}"
    return env.get(own, env.get(shared, ""))
