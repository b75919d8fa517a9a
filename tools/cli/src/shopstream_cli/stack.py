"""`shopstream up|down|status`: the local stack — Kafka plus every service that exists so far."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shopstream_cli.output import console, emit_table, fail
from shopstream_platform.kafka.admin import ensure_topics, probe_kafka
from shopstream_platform.kafka.topics import load_registry
from shopstream_platform.settings import KafkaSettings

ROOT = Path(__file__).resolve().parents[4]
RUN_DIR = Path(os.environ.get("SHOPSTREAM_RUN_DIR", ROOT / ".run"))
KAFKA_SH = ROOT / "deploy" / "kafka" / "kafka.sh"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    module: str
    grpc_port: int
    metrics_port: int

    @property
    def exists(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    @property
    def pid_file(self) -> Path:
        return RUN_DIR / "services" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return RUN_DIR / "logs" / f"{self.name}.log"

    def env_prefix(self) -> str:
        return "SHOPSTREAM_" + self.name.upper().replace("-", "_") + "_"


# Fixed local ports so dashboards, Prometheus and the CLI find every service.
SERVICES = [
    ServiceSpec("catalog", "shopstream_catalog", 50051, 9101),
    ServiceSpec("commerce", "shopstream_commerce", 50052, 9102),
    ServiceSpec("ads", "shopstream_ads", 50053, 9103),
    ServiceSpec("creator-score", "shopstream_creator_score", 50054, 9104),
]


def available_services() -> list[ServiceSpec]:
    return [s for s in SERVICES if s.exists]


def _pid(spec: ServiceSpec) -> int | None:
    try:
        pid = int(spec.pid_file.read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid


def health(port: int, timeout_s: float = 1.0) -> str:
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout_s
            )
    except grpc.RpcError:
        return "UNREACHABLE"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


def up(kafka: KafkaSettings, *, wait_s: float = 120.0) -> int:
    with console.status("starting Kafka …"):
        result = subprocess.run(["bash", str(KAFKA_SH), "start"], capture_output=True, text=True)
    if result.returncode != 0:
        return fail(f"Kafka did not start:\n{result.stdout}{result.stderr}")
    console.print(f"[green]✓[/] Kafka at {kafka.bootstrap_servers}")
    with console.status("creating registry topics …"):
        created = ensure_topics(kafka, load_registry().with_dlqs())
    console.print(f"[green]✓[/] topics ready ({len(created)} created)")
    services = available_services()
    for spec in services:
        if _pid(spec) is not None:
            console.print(f"[green]✓[/] {spec.name} already running")
            continue
        spec.pid_file.parent.mkdir(parents=True, exist_ok=True)
        spec.log_file.parent.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            f"{spec.env_prefix()}GRPC__PORT": str(spec.grpc_port),
            f"{spec.env_prefix()}METRICS_PORT": str(spec.metrics_port),
            f"{spec.env_prefix()}DATABASE_URL": f"sqlite+aiosqlite:///{RUN_DIR}/db/{spec.name}.db",
        }
        with spec.log_file.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", spec.module],
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        spec.pid_file.write_text(str(process.pid))
    deadline = time.monotonic() + wait_s
    with console.status("waiting for services to report SERVING …"):
        pending = list(services)
        while pending and time.monotonic() < deadline:
            pending = [s for s in pending if health(s.grpc_port) != "SERVING"]
            time.sleep(0.3)
    if pending:
        return fail(
            f"not serving after {wait_s:.0f}s: {', '.join(s.name for s in pending)} (see .run/logs)"
        )
    if not services:
        console.print("[yellow]no services exist yet[/]: Kafka and the topic registry are up")
    return status(kafka, as_json=False)


def down() -> int:
    for spec in available_services():
        pid = _pid(spec)
        if pid is None:
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _pid(spec) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
        if _pid(spec) is not None:
            os.kill(pid, signal.SIGKILL)
        spec.pid_file.unlink(missing_ok=True)
        console.print(f"stopped {spec.name}")
    subprocess.run(["bash", str(KAFKA_SH), "stop"], check=False)
    return 0


def status(kafka: KafkaSettings, *, as_json: bool) -> int:
    brokers = probe_kafka(kafka, timeout_s=2.0)
    rows: list[tuple[object, ...]] = [
        ("kafka", "UP" if brokers else "DOWN", kafka.bootstrap_servers, "-", f"{brokers} broker(s)")
    ]
    for spec in SERVICES:
        if not spec.exists:
            rows.append((spec.name, "NOT BUILT YET", "-", "-", ""))
            continue
        pid = _pid(spec)
        state = health(spec.grpc_port) if pid else "STOPPED"
        rows.append(
            (
                spec.name,
                state,
                f"127.0.0.1:{spec.grpc_port}",
                f":{spec.metrics_port}/metrics",
                f"pid {pid}" if pid else "",
            )
        )
    emit_table(
        "shopstream local stack",
        ["component", "state", "grpc", "metrics", "detail"],
        rows,
        as_json=as_json,
    )
    return 0
