"""Typed settings shared by every service; each service subclasses with its own env prefix."""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, Self, TypeVar

from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from shopstream_platform.tracing import TracingSettings

SHARED_ENV_PREFIX = "SHOPSTREAM_"


class KafkaSettings(BaseModel):
    """How to reach Kafka and how topics are created; nothing is left to client defaults."""

    bootstrap_servers: str = "127.0.0.1:9092"
    # Applied to topics the registry does not pin; 1/1 fits the single dev node, 3/2 production.
    replication_factor: int = Field(default=1, ge=1)
    min_insync_replicas: int = Field(default=1, ge=1)
    # How long the producer keeps retrying one record before reporting it failed.
    delivery_timeout_ms: int = Field(default=120_000, ge=1_000)
    linger_ms: int = Field(default=5, ge=0)
    # A client that cannot reach the broker this long at start-up gives up with an error.
    connect_timeout_s: float = Field(default=60.0, gt=0)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    # PEM file of the CA that signed the brokers' certificates (SSL / SASL_SSL); None: the
    # system's trust store. The broker's host name is verified against its certificate.
    ssl_ca_location: str | None = None

    def client_config(self) -> dict[str, Any]:
        """Settings common to every librdkafka client (producer, consumer, admin)."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
            # librdkafka's own log lines go through Python logging (structured, levelled)
            # instead of raw stderr; reconnect attempts back off up to 10 s.
            "logger": logging.getLogger("librdkafka"),
            "reconnect.backoff.max.ms": 10_000,
        }
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_ca_location:
            config["ssl.ca.location"] = self.ssl_ca_location
        return config


class ConsumerSettings(BaseModel):
    """Retry and batching of the platform consumer loop."""

    max_batch: int = Field(default=500, ge=1)
    poll_timeout_s: float = Field(default=0.2, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    backoff_initial_s: float = Field(default=0.1, gt=0)
    backoff_max_s: float = Field(default=5.0, gt=0)
    auto_commit_interval_ms: int = Field(default=1_000, ge=100)
    session_timeout_ms: int = Field(default=10_000, ge=1_000)


class GrpcSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=50051, ge=0, le=65535)
    # None: on, except in the production profile (ServiceSettings.environment == "prod"), where
    # reflection would hand anyone who connects the full API surface.
    reflection: bool | None = None
    # Seconds in-flight RPCs get to finish after SIGTERM before they are cancelled.
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    # PEM server certificate (chain) and key. None for tls_required: required in the production
    # profile, where a server without them refuses to start (set false only behind a proxy or
    # mesh that terminates TLS for it).
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_required: bool | None = None
    max_workers_hint: int = Field(default=100, ge=1)


class AuthSettings(BaseModel):
    """JWT bearer tokens (HS256) that carry a principal's role and id."""

    jwt_secret: SecretStr = SecretStr("dev-only-secret-change-me-0123456789abcdef")
    # Checked on every token (`iss`, `aud`): a token minted for another issuer or another
    # audience (another platform's services sharing a secret by mistake) is refused.
    issuer: str = "shopstream"
    audience: str = "shopstream"
    # Tokens older than this are refused even when their exp is later.
    max_age_s: int = Field(default=86_400, ge=1)


class CombinerSettings(BaseModel):
    """The combiner stage in front of a stream worker (shopstream_platform/combiner.py)."""

    # process: the service starts and supervises its combiner as a child process (on the other
    # core); off: it runs elsewhere (its own deployment, or a test that kills it on purpose).
    mode: Literal["process", "off"] = "process"
    # Several combiners of one service share the work as one consumer group; each needs its own
    # instance name, which makes its transactional id (a restart with the same one aborts the
    # transaction its predecessor left open).
    instance: str = "0"
    min_window_s: float = Field(default=0.05, gt=0)
    max_window_s: float = Field(default=1.0, gt=0)
    max_window_inputs: int = Field(default=200_000, ge=1)
    max_batch: int = Field(default=5_000, ge=1)
    poll_timeout_s: float = Field(default=0.05, gt=0)
    # An open transaction of a killed combiner blocks read_committed readers until a restart
    # aborts it or this timeout does.
    transaction_timeout_ms: int = Field(default=10_000, ge=1_000)
    session_timeout_ms: int = Field(default=10_000, ge=1_000)
    # Largest output record; a window's partition batch is split past it.
    max_record_bytes: int = Field(default=900_000, ge=10_000)
    # Prometheus port of the combiner process (0: not served).
    metrics_port: int = Field(default=0, ge=0, le=65535)
    restart_backoff_s: float = Field(default=1.0, ge=0)


class ServiceSettings(BaseSettings):
    """Base of every service's settings.

    A service subclass sets its own prefix (SHOPSTREAM_CATALOG_); a variable with that prefix wins
    over the shared SHOPSTREAM_ one, so one environment can configure a whole stack. Nested fields
    use `__`: SHOPSTREAM_KAFKA__BOOTSTRAP_SERVERS.
    """

    model_config = SettingsConfigDict(
        env_prefix=SHARED_ENV_PREFIX, env_nested_delimiter="__", extra="ignore"
    )

    service_name: str = "shopstream"
    environment: Literal["dev", "test", "prod"] = "dev"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    # SQLAlchemy async URL: sqlite+aiosqlite:///path.db or postgresql+asyncpg://user:pw@host/db
    database_url: str = "sqlite+aiosqlite:///.run/shopstream.db"
    metrics_port: int = Field(default=9100, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    heartbeat_interval_s: float = Field(default=5.0, gt=0)
    # Health turns NOT_SERVING while a health check fails (checked this often), e.g. an outbox
    # whose delivery has failed for longer than `outbox_unhealthy_after_s`.
    health_check_interval_s: float = Field(default=2.0, gt=0)
    outbox_unhealthy_after_s: float = Field(default=30.0, gt=0)
    outbox_poll_interval_s: float = Field(default=0.05, gt=0)
    outbox_batch: int = Field(default=500, ge=1)
    # Young-generation collections every this many allocations (0: CPython's 700); see
    # shopstream_platform/gc_tuning.py for why and what it measured.
    gc_gen0_threshold: int = Field(default=50_000, ge=0)
    kafka: KafkaSettings = KafkaSettings()
    consumer: ConsumerSettings = ConsumerSettings()
    grpc: GrpcSettings = GrpcSettings()
    auth: AuthSettings = AuthSettings()
    tracing: TracingSettings = TracingSettings()

    @model_validator(mode="after")
    def _production_profile(self) -> Self:
        """gRPC settings left unset follow the profile: in production, TLS required and
        reflection off (grpc/server.py enforces both at start)."""
        production = self.environment == "prod"
        unset: dict[str, bool] = {}
        if self.grpc.reflection is None:
            unset["reflection"] = not production
        if self.grpc.tls_required is None:
            unset["tls_required"] = production
        if unset:
            self.grpc = self.grpc.model_copy(update=unset)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        shared = EnvSettingsSource(
            settings_cls, env_prefix=SHARED_ENV_PREFIX, env_nested_delimiter="__"
        )
        return (init_settings, env_settings, shared, dotenv_settings, file_secret_settings)


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S]) -> S:
    """Read settings from the environment or exit with a message that names every bad variable."""
    try:
        return cls()
    except ValidationError as exc:
        prefix = str(cls.model_config.get("env_prefix", ""))
        lines = [f"invalid settings for {cls.__name__}:"]
        for err in exc.errors():
            var = prefix + "__".join(str(p) for p in err["loc"]).upper()
            lines.append(f"  {var}: {err['msg']} (got {err.get('input')!r})")
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(2) from None
