"""How a run is configured: rate, duration, seed, world size, and where the services are."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from pydantic_settings import SettingsConfigDict

from shopstream_platform.settings import AuthSettings, KafkaSettings, ServiceSettings
from shopstream_simulator.plan import NORMAL_DAY, DayShape
from shopstream_simulator.world import WorldSize

SERVICES = ("catalog", "commerce", "ads", "creator-score")
# The fixed ports of the local stack (tools/cli stack.SERVICES): gRPC and /metrics.
LOCAL_GRPC = {"catalog": 50051, "commerce": 50052, "ads": 50053, "creator-score": 50054}
LOCAL_METRICS = {"catalog": 9101, "commerce": 9102, "ads": 9103, "creator-score": 9104}
# Without these nothing can be simulated; the others degrade with a warning.
REQUIRED = ("catalog", "commerce")


class SimulatorSettings(ServiceSettings):
    """The simulator reads the same SHOPSTREAM_* variables as the services (Kafka, auth secret)."""

    model_config = SettingsConfigDict(
        env_prefix="SHOPSTREAM_SIMULATOR_", env_nested_delimiter="__", extra="ignore"
    )
    service_name: str = "simulator"


@dataclass(frozen=True)
class Targets:
    """host:port of each service's gRPC API and /metrics endpoint."""

    grpc: dict[str, str] = field(
        default_factory=lambda: {s: f"127.0.0.1:{p}" for s, p in LOCAL_GRPC.items()}
    )
    metrics: dict[str, str] = field(
        default_factory=lambda: {s: f"127.0.0.1:{p}" for s, p in LOCAL_METRICS.items()}
    )

    def with_override(self, spec: str) -> Targets:
        """Apply `name=host:port`: a service (gRPC), `<service>-metrics`, or `kafka` (ignored
        here; see `kafka_override`)."""
        name, sep, address = spec.partition("=")
        if not sep or not address:
            raise ValueError(f"expected NAME=HOST:PORT, got {spec!r}")
        address = _normalise(address)
        if name in SERVICES:
            return replace(self, grpc={**self.grpc, name: address})
        if name.endswith("-metrics") and name.removesuffix("-metrics") in SERVICES:
            return replace(self, metrics={**self.metrics, name.removesuffix("-metrics"): address})
        if name == "kafka":
            return self
        names = ", ".join([*SERVICES, *(f"{s}-metrics" for s in SERVICES), "kafka"])
        raise ValueError(f"unknown target {name!r}; one of {names}")


def _normalise(address: str) -> str:
    host, sep, port = address.rpartition(":")
    if not sep:
        raise ValueError(f"expected HOST:PORT, got {address!r}")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bad port in {address!r}")
    return f"{host or '127.0.0.1'}:{port}"


def kafka_override(specs: list[str]) -> str | None:
    for spec in specs:
        name, _, address = spec.partition("=")
        if name == "kafka" and address:
            return address
    return None


@dataclass(frozen=True)
class SimConfig:
    seed: int = 7
    # Orders per second (unit "orders") or Kafka records + orders per second (unit "events").
    rate: float = 2.0
    unit: Literal["orders", "events"] = "orders"
    duration_s: float = 120.0
    # The shape of the day: a normal one, or a large one of mostly views (plan.LARGE_DAY).
    day: DayShape = NORMAL_DAY
    # Prefix of every id the run creates; None: "s<seed>", or "s<seed>-2", ... if that world
    # already exists in the stack (so a re-run never collides with an earlier one).
    run_id: str | None = None
    currency: str = "USD"
    country: str = "US"
    world: WorldSize = field(default_factory=WorldSize)
    targets: Targets = field(default_factory=Targets)
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    # gRPC calls in flight at once, and buyer journeys alive at once.
    concurrency: int = 48
    max_journeys: int = 5_000
    rpc_timeout_s: float = 5.0
    # How long to wait at start for the services to report SERVING.
    connect_wait_s: float = 5.0
    rpc_attempts: int = 5
    # After the planned duration: how long journeys may take to finish their orders.
    drain_s: float = 90.0
    # How long a buyer follows an order on its way before counting it as still on the way (the
    # carrier's times are commerce's settings: `make run` shortens them to seconds).
    delivery_wait_s: float = 60.0
    # Commerce's `ship_within_s` (an order's ship-by is its payment + this; main.py reads
    # SHOPSTREAM_COMMERCE_SHIP_WITHIN_S, which `make run` sets to 20 s), and how long the
    # planted late shipper holds an order for its ship-by to pass; further off, it ships now.
    ship_within_s: float = 2 * 86_400.0
    late_ship_wait_s: float = 60.0
    # After the drain: how long to wait for the services to catch the fraud.
    verify_s: float = 45.0
    # Seconds between dashboard refreshes (service queries and metric scrapes).
    refresh_s: float = 2.0

    @property
    def default_run_id(self) -> str:
        return f"s{self.seed}"
