"""deploy/compose.yaml: what it builds, mounts and sets exists, and it matches the local stack.

No Docker engine is needed (nor, on this project's machines, available): the file is read as YAML
with its anchors and merge keys resolved, which is what `docker compose config` starts from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_support import REPO, SERVICES, Service, load_with, unknown_settings

COMPOSE = REPO / "deploy" / "compose.yaml"
# The local stack's fixed gRPC ports (tools/cli/src/shopstream_cli/stack.py), so the CLI works.
LOCAL_GRPC_PORTS = {"catalog": 50051, "commerce": 50052, "ads": 50053, "creator-score": 50054}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def test_it_runs_kafka_postgres_the_services_prometheus_and_grafana(
    compose: dict[str, Any],
) -> None:
    assert set(compose["services"]) == {
        "kafka",
        "postgres",
        "prometheus",
        "grafana",
        *(s.name for s in SERVICES),
    }


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_services_build_from_their_dockerfile_and_publish_the_local_ports(
    compose: dict[str, Any], svc: Service
) -> None:
    spec = compose["services"][svc.name]
    context = (COMPOSE.parent / spec["build"]["context"]).resolve()
    assert context == REPO
    assert (
        context / spec["build"]["dockerfile"]
    ) == REPO / "deploy/images" / svc.name / "Dockerfile"
    assert spec["ports"] == [f"127.0.0.1:{LOCAL_GRPC_PORTS[svc.name]}:50051"]
    assert spec["read_only"] is True
    assert set(spec["depends_on"]) == {"kafka", "postgres"}
    if svc.stream_worker:
        assert any(v.endswith(":/var/lib/shopstream") for v in spec["volumes"])


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_every_variable_is_a_setting_and_loads(
    compose: dict[str, Any], svc: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {k: str(v) for k, v in compose["services"][svc.name]["environment"].items()}
    assert unknown_settings(svc, sorted(env)) == []
    settings = load_with(svc, env, monkeypatch)
    assert settings.kafka.bootstrap_servers == "kafka:9092"
    assert settings.database_url.startswith("postgresql+asyncpg://shopstream:shopstream@postgres")


def mounted_sources(compose: dict[str, Any]) -> list[Path]:
    sources = []
    for spec in compose["services"].values():
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                sources.append((COMPOSE.parent / source).resolve())
    return sources


def test_every_mounted_file_exists(compose: dict[str, Any]) -> None:
    sources = mounted_sources(compose)
    assert len(sources) >= 6
    missing = [str(p) for p in sources if not p.exists()]
    assert missing == []


def test_grafana_gets_the_existing_dashboards_and_a_datasource_they_use(
    compose: dict[str, Any],
) -> None:
    grafana = compose["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"])
    dashboards = mounts["./grafana/dashboards"]
    assert grafana["environment"]["SHOPSTREAM_DASHBOARDS"] == dashboards
    datasource = yaml.safe_load((REPO / "deploy/compose/grafana-datasource.yaml").read_text())
    local = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/datasources/shopstream.yaml").read_text()
    )
    assert datasource["datasources"][0]["uid"] == local["datasources"][0]["uid"]
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"


def test_prometheus_scrapes_every_service_under_its_name(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((REPO / "deploy/compose/prometheus.yml").read_text())
    jobs = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    assert set(jobs) == {s.name for s in SERVICES}
    for svc in SERVICES:
        assert f"{svc.name}:9100" in jobs[svc.name]
        if svc.stream_worker:
            env = compose["services"][svc.name]["environment"]
            port = env[f"{svc.env_prefix}COMBINER__METRICS_PORT"]
            assert f"{svc.name}:{port}" in jobs[svc.name]
