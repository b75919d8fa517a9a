"""Every environment variable the manifests, images and compose file set is a real setting.

A misspelt variable is not an error to pydantic-settings (unknown ones are ignored), so without
this check a typo in a ConfigMap would silently leave a default in force, such as the loopback
listen address or the dev JWT secret.
"""

from __future__ import annotations

import pytest
from deploy_support import (
    OVERLAYS,
    REPO,
    SERVICES,
    SHARED_PREFIX,
    Resource,
    Service,
    load_with,
    pod_environment,
    unknown_settings,
)


def test_the_check_knows_a_setting_from_a_typo() -> None:
    catalog = SERVICES[0]
    assert (
        unknown_settings(
            catalog,
            [
                "SHOPSTREAM_CATALOG_KAFKA__BOOTSTRAP_SERVERS",
                "SHOPSTREAM_KAFKA__SASL_PASSWORD",
                "SHOPSTREAM_CATALOG_QUALITY__WINDOW_DAYS",
            ],
        )
        == []
    )
    assert unknown_settings(
        catalog,
        [
            "SHOPSTREAM_CATALOG_KAFKA__BOOTSTRAP_SERVER",
            "SHOPSTREAM_CATALOG_GRPC_PORT",
            "SHOPSTREAM_CATALOG_KAFKA",
            "SHOPSTREAM_CREATOR_SCORE_PUBLISH_STEP",
            "OTHER_THING",
        ],
    ) == [
        "SHOPSTREAM_CATALOG_KAFKA__BOOTSTRAP_SERVER",
        "SHOPSTREAM_CATALOG_GRPC_PORT",
        "SHOPSTREAM_CATALOG_KAFKA",
        "SHOPSTREAM_CREATOR_SCORE_PUBLISH_STEP",
        "OTHER_THING",
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_every_variable_a_pod_gets_is_a_setting(
    rendered: dict[str, list[Resource]], overlay: str, svc: Service
) -> None:
    env = pod_environment(rendered[overlay], svc)
    assert len(env) >= 8
    assert unknown_settings(svc, sorted(env)) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_a_pod_environment_loads_into_the_settings_it_means(
    rendered: dict[str, list[Resource]],
    overlay: str,
    svc: Service,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_with(svc, pod_environment(rendered[overlay], svc), monkeypatch)
    # Listen beyond loopback, on the ports the Service and probes use.
    assert settings.grpc.host == "0.0.0.0"
    assert settings.grpc.port == 50051
    assert (settings.metrics_host, settings.metrics_port) == ("0.0.0.0", 9100)
    assert settings.environment == overlay
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.auth.jwt_secret.get_secret_value() == "k" * 48
    kafka = settings.kafka
    assert kafka.bootstrap_servers.startswith("shopstream-kafka-bootstrap:")
    # The service's own variables and the shared ones merge inside the nested Kafka settings.
    if overlay == "prod":
        assert (kafka.security_protocol, kafka.sasl_mechanism) == (
            "SASL_PLAINTEXT",
            "SCRAM-SHA-512",
        )
        assert kafka.sasl_username == svc.name
        assert kafka.sasl_password.get_secret_value() == "scram-password"
        assert (kafka.replication_factor, kafka.min_insync_replicas) == (3, 2)
    else:
        assert (kafka.security_protocol, kafka.sasl_username) == ("PLAINTEXT", None)
        assert (kafka.replication_factor, kafka.min_insync_replicas) == (1, 1)
    if svc.stream_worker:
        assert str(settings.data_dir).startswith("/var/lib/shopstream/")
        assert settings.combiner.instance == f"{svc.name}-0"


def dockerfile_env(svc: Service) -> dict[str, str]:
    """ENV of the runtime stage of a service's Dockerfile (continuation lines joined)."""
    text = (REPO / "deploy" / "images" / svc.name / "Dockerfile").read_text().replace("\\\n", " ")
    runtime = text.split(" AS runtime", 1)[1]
    env: dict[str, str] = {}
    for line in runtime.splitlines():
        if line.startswith("ENV "):
            for pair in line[4:].split():
                name, _, value = pair.partition("=")
                env[name] = value
    return env


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_every_variable_an_image_sets_is_a_setting(svc: Service) -> None:
    env = dockerfile_env(svc)
    ours = [n for n in env if n.startswith(SHARED_PREFIX)]
    assert len(ours) >= 4
    assert unknown_settings(svc, ours) == []
