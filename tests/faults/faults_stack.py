"""The four services as real processes on the fault cluster, under a supervisor like the one
`shopstream up` gives each service in the local stack: a process that exits without being asked
to is started again (and counted), because under broker faults a service may exit non-zero by
design (a fatal Kafka client error) rather than limp on."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shopstream_platform.settings import KafkaSettings
from shopstream_platform.testing import free_port
from shopstream_simulator import Targets

MODULES = {
    "catalog": ("shopstream_catalog", "SHOPSTREAM_CATALOG_"),
    "commerce": ("shopstream_commerce", "SHOPSTREAM_COMMERCE_"),
    "ads": ("shopstream_ads", "SHOPSTREAM_ADS_"),
    "creator-score": ("shopstream_creator_score", "SHOPSTREAM_CREATOR_SCORE_"),
}
# The supervisor's pace, and its liveness rule: no health answer at all (the process is alive
# but serves nothing) for this long means hung.
TICK_S = 0.2
PROBE_EVERY = 25
LIVENESS_S = 60.0
NO_ANSWER = {"UNAVAILABLE", "DEADLINE_EXCEEDED"}
# Kafka client errors worth reporting when a service logs them.
WATCHED_ERRORS = ("OUT_OF_ORDER_SEQUENCE_NUMBER", "_FATAL", "UNKNOWN_PRODUCER_ID", "Traceback")
# Services with a transactional outbox in their database.
OUTBOX_SERVICES = ("catalog", "commerce", "ads")


async def health(port: int, timeout_s: float = 1.0) -> str:
    """The gRPC health status name, or the status code name when the call fails."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            return exc.code().name
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def _ending_with_parent(command: list[str]) -> list[str]:
    """The command under `setpriv --pdeathsig TERM` (util-linux), when there: SIGTERM when the
    test process dies, however it dies, so a crashed pytest leaves no services running on a
    shared machine. Not a `preexec_fn`: that makes Python fork the multi-threaded test process,
    and gRPC's fork handler then aborted the child before its exec ("epoll_wait error: Bad file
    descriptor", exit -6, twice in five runs)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", *command] if setpriv else command


@dataclass
class Exit:
    service: str
    code: int
    at: float
    expected: bool
    # Alive but not answering for LIVENESS_S: killed and started again.
    hung: bool = False


class Service:
    """One service process: its own gRPC and metrics ports (kept across restarts), database,
    Faust data directory and log file."""

    def __init__(self, name: str, env: dict[str, str], log: Path, db: Path) -> None:
        self.name = name
        self.module = MODULES[name][0]
        self.env = env
        self.port = int(env[MODULES[name][1] + "GRPC__PORT"])
        self.log = log
        self.db = db
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        # Exit codes of start-up attempts that ended before SERVING.
        self.start_failures: list[int] = []

    async def start(self, timeout_s: float = 180.0, attempts: int = 3) -> float:
        """Start it and wait until health says SERVING; the seconds it took. Like a supervisor
        (and the platform's ServiceProcess), start again when it exits during start-up: a
        service exits non-zero on a fatal Kafka client error."""
        started = time.monotonic()
        for attempt in range(1, attempts + 1):
            self._log_file = self.log.open("ab")
            self.process = subprocess.Popen(  # returns at once
                _ending_with_parent([sys.executable, "-m", self.module]),
                env=self.env,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
            )
            while time.monotonic() - started < timeout_s and self.process.poll() is None:
                if await health(self.port) == "SERVING":
                    return time.monotonic() - started
                await asyncio.sleep(0.1)
            if self.process.poll() is None:
                break
            self.start_failures.append(self.process.returncode)
            if attempt == attempts:
                raise AssertionError(
                    f"{self.name} exited with {self.process.returncode} at start (see {self.log})"
                )
        raise AssertionError(f"{self.name} not SERVING after {timeout_s:.0f} s (see {self.log})")

    def dump_stacks(self) -> None:
        """Every thread's Python stack, appended to the log (needs py-spy; skipped without)."""
        spy = shutil.which("py-spy")
        if spy is None or self.process is None:
            return
        with self.log.open("ab") as log:
            log.write(
                f"\n=== {self.name} not answering health for {LIVENESS_S:.0f} s: py-spy dump\n".encode()
            )
            log.flush()
            subprocess.run(
                [spy, "dump", "--pid", str(self.process.pid)],
                stdout=log,
                stderr=log,
                timeout=60,
                check=False,
            )

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def terminate(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def outbox(self) -> tuple[int, int]:
        """Rows in the outbox (not yet acknowledged by Kafka) and in its dead letters."""
        with contextlib.closing(
            sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        ) as db:
            pending = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
            dead = db.execute("SELECT count(*) FROM outbox_dead_letters").fetchone()[0]
        return int(pending), int(dead)

    def outbox_ce_ids(self) -> set[str]:
        """The ce_id of every row waiting in the outbox."""
        with contextlib.closing(
            sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        ) as db:
            return {row[0] for row in db.execute("SELECT ce_id FROM outbox")}


@dataclass
class Stack:
    services: dict[str, Service]
    tag: str
    exits: list[Exit] = field(default_factory=list)
    # Services the supervisor leaves alone (a scenario stops and starts them itself).
    unsupervised: set[str] = field(default_factory=set)

    @property
    def targets(self) -> Targets:
        return Targets(
            grpc={n: f"127.0.0.1:{s.port}" for n, s in self.services.items()},
            metrics={
                n: f"127.0.0.1:{s.env[MODULES[n][1] + 'METRICS_PORT']}"
                for n, s in self.services.items()
            },
        )

    def record_exit(self, name: str, code: int, *, expected: bool) -> None:
        self.exits.append(Exit(name, code, time.monotonic(), expected=expected))

    def restarted_since(self, name: str, at: float) -> bool:
        """Whether `name` exited (asked to or not) since `at`: its Prometheus counters restarted."""
        return any(e.service == name and e.at >= at for e in self.exits)

    def restarts_since(self, at: float) -> dict[str, list[str]]:
        """Unexpected exits since `at`, per service: exit codes, or `hung` for a process the
        liveness rule killed."""
        out: dict[str, list[str]] = {}
        for e in self.exits:
            if e.at >= at and not e.expected:
                out.setdefault(e.service, []).append("hung" if e.hung else f"exit {e.code}")
        return out

    async def supervise(self) -> None:
        """Start again any supervised service that exited (the local supervisor's job), and one
        that is alive but has not answered its health check for LIVENESS_S (the Kubernetes
        liveness probe's job: deploy/k8s, gRPC probe every 10 s, 6 failures). A hung process's
        Python stacks go to its log first (py-spy, when installed), as evidence."""
        silent: dict[str, int] = dict.fromkeys(self.services, 0)
        tick = 0
        while True:
            tick += 1
            for name, service in self.services.items():
                if name in self.unsupervised:
                    silent[name] = 0
                    continue
                code = service.exited()
                hung = False
                if code is None and tick % PROBE_EVERY == 0:
                    answered = await health(service.port, 2.0) not in NO_ANSWER
                    silent[name] = 0 if answered else silent[name] + 1
                    hung = silent[name] * PROBE_EVERY * TICK_S >= LIVENESS_S
                if code is None and not hung:
                    continue
                if hung:
                    await asyncio.to_thread(service.dump_stacks)
                    service.kill()
                    code = service.exited()
                silent[name] = 0
                self.exits.append(
                    Exit(name, code or 0, time.monotonic(), expected=False, hung=hung)
                )
                # Like shopstream_cli.supervisor: a crash loop must not spin.
                await asyncio.sleep(1.0)
                with contextlib.suppress(AssertionError):
                    await service.start()
            await asyncio.sleep(TICK_S)

    @contextlib.contextmanager
    def hands_off(self, name: str) -> Iterator[Service]:
        """The scenario stops and restarts `name` itself meanwhile."""
        self.unsupervised.add(name)
        try:
            yield self.services[name]
        finally:
            self.unsupervised.discard(name)

    def log_mark(self) -> dict[str, int]:
        """Where each service's log stands now."""
        return {n: s.log.stat().st_size if s.log.exists() else 0 for n, s in self.services.items()}

    def log_findings(self, mark: dict[str, int]) -> list[str]:
        """Kafka client errors the services logged since `mark`, counted per service and kind
        (scenario 2.6 looks for the idempotent producer's OUT_OF_ORDER_SEQUENCE_NUMBER)."""
        found = []
        for name, service in self.services.items():
            with service.log.open("rb") as log:
                log.seek(mark.get(name, 0))
                text = log.read().decode("utf-8", "replace")
            for kind in WATCHED_ERRORS:
                if n := text.count(kind):
                    found.append(f"{name} logged {kind} {n} time(s) (see {service.log})")
        return found

    async def all_serving(self, timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            states = {n: await health(s.port) for n, s in self.services.items()}
            if all(v == "SERVING" for v in states.values()):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"not all services SERVING: {states}")
            await asyncio.sleep(0.5)

    async def outboxes_drained(self, timeout_s: float = 180.0) -> dict[str, int]:
        """Wait until every outbox is empty (each committed row acknowledged by Kafka); the dead
        letters per service (rows that could never be published)."""
        deadline = time.monotonic() + timeout_s
        while True:
            counts = {n: self.services[n].outbox() for n in OUTBOX_SERVICES}
            if all(pending == 0 for pending, _ in counts.values()):
                return {n: dead for n, (_, dead) in counts.items()}
            if time.monotonic() > deadline:
                raise AssertionError(f"outbox rows still unpublished: {counts}")
            await asyncio.sleep(0.5)


def service_env(
    name: str, kafka: KafkaSettings, workdir: Path, tag: str, catalog_name: str
) -> dict[str, str]:
    prefix = MODULES[name][1]
    settings = {
        "KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KAFKA__REPLICATION_FACTOR": str(kafka.replication_factor),
        "KAFKA__MIN_INSYNC_REPLICAS": str(kafka.min_insync_replicas),
        "DATABASE_URL": f"sqlite+aiosqlite:///{workdir / name}.db",
        # Own consumer groups and Faust apps: this stack reads every record afresh.
        "SERVICE_NAME": f"{name}-faults-{tag}",
        "FAUST_APP_ID": f"{name}-faults-{tag}",
        "DATA_DIR": str(workdir / f"faust-{name}"),
        "GRPC__PORT": str(free_port()),
        "METRICS_PORT": str(free_port()),
        "LOG_LEVEL": "WARNING",
        "CONSUMER__POLL_TIMEOUT_S": "0.05",
        "OUTBOX_POLL_INTERVAL_S": "0.02",
    }
    if name == "commerce":
        # Only this stack's catalog answers its orders (a catalog reads every order on the topic).
        settings["CATALOG_SOURCE"] = f"shopstream/{catalog_name}"
        # The sandbox payment provider keeps its charges in a file, as a real provider keeps them
        # outside commerce: in memory, a restarted commerce could not refund an earlier charge
        # ("no such charge"; reconcile's payments.provider_net then differs).
        settings["SANDBOX_LEDGER_PATH"] = str(workdir / "payment-provider.jsonl")
    # The pytest process's own SHOPSTREAM_* settings (a developer's shell) must not leak in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPSTREAM_")}
    return {**env, **{prefix + k: v for k, v in settings.items()}}


@contextlib.asynccontextmanager
async def running_stack(kafka: KafkaSettings, workdir: Path) -> AsyncIterator[Stack]:
    tag = uuid.uuid4().hex[:8]
    services = {
        name: Service(
            name,
            service_env(name, kafka, workdir, tag, f"catalog-faults-{tag}"),
            workdir / f"{name}.log",
            workdir / f"{name}.db",
        )
        for name in MODULES
    }
    stack = Stack(services, tag)
    supervisor: asyncio.Task[Any] | None = None
    try:
        await asyncio.gather(*(s.start() for s in services.values()))
        supervisor = asyncio.create_task(stack.supervise())
        yield stack
    finally:
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        for service in services.values():
            if service.exited() is None:
                service.terminate()
        for service in services.values():
            if service.process is not None:
                try:
                    service.process.wait(60)
                except subprocess.TimeoutExpired:
                    service.kill()
