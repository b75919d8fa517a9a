"""`shopstream up|down|status|logs`: the local stack — Kafka plus every service, each service
under a restart-on-exit supervisor (supervisor.py) whose pid is recorded in `.run/services`."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shopstream_cli.output import console, emit_json, emit_table, fail
from shopstream_cli.supervisor import read_state
from shopstream_platform.kafka.admin import ensure_topics, probe_kafka
from shopstream_platform.kafka.topics import load_registry
from shopstream_platform.metrics import REVISION_ENV
from shopstream_platform.settings import KafkaSettings

ROOT = Path(__file__).resolve().parents[4]
KAFKA_SH = ROOT / "deploy" / "kafka" / "kafka.sh"
# How long a service may take to shut down gracefully (its outbox drain alone is bounded at
# 20 s) before `down` kills what is left of its process group.
STOP_TIMEOUT_S = 45.0


def run_dir() -> Path:
    """Read at call time, so a test (or a second stack) can point it elsewhere."""
    return Path(os.environ.get("SHOPSTREAM_RUN_DIR", ROOT / ".run"))


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
        """The supervisor's pid; it leads the process group of everything the service runs."""
        return run_dir() / "services" / f"{self.name}.pid"

    @property
    def state_file(self) -> Path:
        return run_dir() / "services" / f"{self.name}.json"

    @property
    def log_file(self) -> Path:
        return run_dir() / "logs" / f"{self.name}.log"

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


def spec_named(name: str) -> ServiceSpec | None:
    return next((s for s in SERVICES if s.name == name), None)


def _recorded_pid(spec: ServiceSpec) -> int | None:
    try:
        return int(spec.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state, ppid, pgrp, ...)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    return stat.rsplit(")", 1)[1].split()


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent counts as gone)."""
    fields = _proc_stat(pid)
    return fields is not None and fields[0] != "Z"


def group_members(pgid: int) -> list[int]:
    """Pids of the live processes in process group `pgid` (Linux /proc; zombies excluded)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields is not None and fields[0] != "Z" and int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


def _pid(spec: ServiceSpec) -> int | None:
    """The supervisor's pid while it runs."""
    pid = _recorded_pid(spec)
    return pid if pid is not None and _alive(pid) else None


def health(address: str, timeout_s: float = 1.0) -> str:
    try:
        with grpc.insecure_channel(address) as channel:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=timeout_s
            )
    except grpc.RpcError:
        return "UNREACHABLE"
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


def local_address(spec: ServiceSpec) -> str:
    return f"127.0.0.1:{spec.grpc_port}"


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
        start_supervised(spec, [sys.executable, "-m", spec.module], _service_env(spec))
    deadline = time.monotonic() + wait_s
    with console.status("waiting for services to report SERVING …"):
        pending = list(services)
        while pending and time.monotonic() < deadline:
            pending = [s for s in pending if health(local_address(s)) != "SERVING"]
            time.sleep(0.3)
    if pending:
        return fail(
            f"not serving after {wait_s:.0f}s: {', '.join(s.name for s in pending)} (see .run/logs)"
        )
    if not services:
        console.print("[yellow]no services exist yet[/]: Kafka and the topic registry are up")
    return status(kafka, {s.name: local_address(s) for s in SERVICES}, as_json=False)


def _revision() -> str:
    """The checkout's commit, for the services' shopstream_build_info."""
    try:
        result = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def _service_env(spec: ServiceSpec) -> dict[str, str]:
    return {
        REVISION_ENV: _revision(),
        **os.environ,
        f"{spec.env_prefix()}GRPC__PORT": str(spec.grpc_port),
        f"{spec.env_prefix()}METRICS_PORT": str(spec.metrics_port),
        f"{spec.env_prefix()}DATABASE_URL": f"sqlite+aiosqlite:///{run_dir()}/db/{spec.name}.db",
    }


def start_supervised(
    spec: ServiceSpec, command: list[str], env: Mapping[str, str], *, initial_backoff_s: float = 1.0
) -> int:
    """Start `command` under a supervisor in a new session; record and return its pid."""
    spec.pid_file.parent.mkdir(parents=True, exist_ok=True)
    spec.log_file.parent.mkdir(parents=True, exist_ok=True)
    spec.state_file.unlink(missing_ok=True)
    supervisor = [
        sys.executable,
        "-m",
        "shopstream_cli.supervisor",
        "--state",
        str(spec.state_file),
        "--log",
        str(spec.log_file),
        "--initial-backoff",
        str(initial_backoff_s),
        "--",
        *command,
    ]
    with spec.log_file.open("ab") as log:
        process = subprocess.Popen(
            supervisor, env=dict(env), stdout=log, stderr=log, start_new_session=True
        )
    spec.pid_file.write_text(str(process.pid))
    return process.pid


def down(*, keep_kafka: bool = False, timeout_s: float = STOP_TIMEOUT_S) -> int:
    """Stop every service (supervisor, service, its combiner), then Kafka unless kept."""
    stopping = []
    for spec in SERVICES:
        pgid = _recorded_pid(spec)
        if pgid is None:
            continue
        try:
            if _alive(pgid):
                # The supervisor passes SIGTERM on and restarts nothing more.
                os.kill(pgid, signal.SIGTERM)
            elif group_members(pgid):
                # The supervisor was killed: signal what it left behind directly.
                os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        stopping.append((spec, pgid))
    deadline = time.monotonic() + timeout_s
    while any(group_members(pgid) for _, pgid in stopping) and time.monotonic() < deadline:
        time.sleep(0.2)
    for spec, pgid in stopping:
        if group_members(pgid):
            console.print(f"[yellow]{spec.name} did not stop in {timeout_s:.0f} s: killed[/]")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        spec.pid_file.unlink(missing_ok=True)
        console.print(f"stopped {spec.name}")
    if not keep_kafka:
        subprocess.run(["bash", str(KAFKA_SH), "stop"], check=False)
    return 0


@dataclass(frozen=True)
class Component:
    name: str
    state: str
    healthy: bool
    address: str
    metrics: str
    pid: int | None = None
    supervisor_pid: int | None = None
    restarts: int | None = None
    detail: str = ""

    def row(self) -> tuple[object, ...]:
        restarts = "" if self.restarts is None else self.restarts
        return (self.name, self.state, self.address, self.metrics, restarts, self.detail)


def service_component(spec: ServiceSpec, address: str, probe: Callable[[str], str]) -> Component:
    metrics = f":{spec.metrics_port}/metrics"
    if not spec.exists:
        # Not part of this checkout, so not part of the stack: it does not count against health.
        return Component(spec.name, "NOT BUILT YET", True, "-", "-")
    supervisor = _pid(spec)
    if supervisor is None:
        return Component(spec.name, "STOPPED", False, address, metrics)
    state: dict[str, Any] = read_state(spec.state_file) or {}
    pid = state.get("pid")
    restarts = state.get("restarts")
    detail = f"pid {pid}, supervisor {supervisor}" if pid else f"supervisor {supervisor}"
    if pid is None and state.get("next_start_at"):
        wait = max(0.0, float(state["next_start_at"]) - time.time())
        code = state.get("last_exit_code")
        return Component(
            spec.name,
            "RESTARTING",
            False,
            address,
            metrics,
            None,
            supervisor,
            restarts,
            f"exited with {code}; next start in {wait:.0f} s",
        )
    serving = probe(address)
    return Component(
        spec.name,
        serving,
        serving == "SERVING",
        address,
        metrics,
        pid,
        supervisor,
        restarts,
        detail,
    )


def status(
    kafka: KafkaSettings,
    addresses: Mapping[str, str],
    *,
    as_json: bool,
    probe: Callable[[str], str] = health,
) -> int:
    """Print every component; 0 only when Kafka answers and every service is SERVING."""
    brokers = probe_kafka(kafka, timeout_s=2.0)
    components = [
        Component(
            "kafka",
            "UP" if brokers else "DOWN",
            bool(brokers),
            kafka.bootstrap_servers,
            "-",
            detail=f"{brokers} broker(s)",
        )
    ]
    components += [service_component(s, addresses[s.name], probe) for s in SERVICES]
    healthy = all(c.healthy for c in components)
    if as_json:
        emit_json(
            {
                "healthy": healthy,
                "components": [
                    {k: v for k, v in c.__dict__.items() if v is not None} for c in components
                ],
            }
        )
    else:
        emit_table(
            "shopstream local stack",
            ["component", "state", "grpc", "metrics", "restarts", "detail"],
            [c.row() for c in components],
            as_json=False,
        )
        unhealthy = [c.name for c in components if not c.healthy]
        if unhealthy:
            console.print(f"[red]not healthy:[/] {', '.join(unhealthy)}")
    return 0 if healthy else 1


def logs(name: str, *, lines: int, follow: bool) -> int:
    """The last lines of a service's log (stdout and stderr, supervisor notes included)."""
    spec = spec_named(name)
    if spec is None:
        return fail(f"no service {name!r} (one of: {', '.join(s.name for s in SERVICES)})")
    if not spec.log_file.exists():
        return fail(f"{spec.log_file} does not exist: {name} has not run here (shopstream up)")
    command = ["tail", "-n", str(lines), *(["-F"] if follow else []), str(spec.log_file)]
    try:
        return subprocess.run(command, check=False).returncode
    except KeyboardInterrupt:
        return 0
