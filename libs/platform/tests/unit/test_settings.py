import pytest
from pydantic_settings import SettingsConfigDict

from shopstream_platform.settings import ServiceSettings, load_settings


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SHOPSTREAM_DEMO_", env_nested_delimiter="__")
    service_name: str = "demo"


def test_service_prefix_beats_shared_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPSTREAM_KAFKA__BOOTSTRAP_SERVERS", "shared:9092")
    monkeypatch.setenv("SHOPSTREAM_GRPC__PORT", "6000")
    monkeypatch.setenv("SHOPSTREAM_DEMO_GRPC__PORT", "7000")
    settings = load_settings(DemoSettings)
    assert settings.kafka.bootstrap_servers == "shared:9092"
    assert settings.grpc.port == 7000


def test_bad_settings_exit_with_the_variable_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHOPSTREAM_DEMO_METRICS_PORT", "not-a-port")
    with pytest.raises(SystemExit) as exit_info:
        load_settings(DemoSettings)
    assert exit_info.value.code == 2
    assert "SHOPSTREAM_DEMO_METRICS_PORT" in capsys.readouterr().err
