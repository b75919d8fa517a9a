"""A Kafka broker of the bench's own: the benches never touch the local stack's broker.

The services under test name their topics in code (`commerce.orders.v1`, ...) and their consumer
groups in settings, so a bench on the stack's broker wrote into the stack's own topics: a
`make run` after `make bench` first had to read the benches' records (the ads worker waded through
36,000 ledger entries and caught 0 of 278 bot clicks). Instead each bench run starts a single-node
broker with `deploy/kafka/kafka.sh` on free loopback ports and a temporary run directory (the
stack's jars are linked in, not copied), creates the registry's topics on it, and on exit stops it
and deletes the directory: topics, groups and records go with it.

    with BenchBroker() as broker:      # exports SHOPSTREAM_BENCH_BOOTSTRAP / _RUN_DIR to children
        ...broker.bootstrap...

`bench_bootstrap()` is the entry point of a bench module: the broker named by
SHOPSTREAM_BENCH_BOOTSTRAP when a parent (run_all.py) started one, else a new own broker that the
process stops at exit.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from _common import BOOTSTRAP_ENV, KAFKA_SH, REPO, free_port, require_loopback

RUN_DIR_ENV = "SHOPSTREAM_BENCH_RUN_DIR"
# Where the stack's jars are (kafka.sh fetches them there once); the bench broker links to them.
STACK_RUN_DIR = Path(os.environ.get("SHOPSTREAM_RUN_DIR", REPO / ".run"))


class BenchBroker:
    """A single-node KRaft broker on free ports in a temporary directory, removed on exit."""

    def __init__(self, start_timeout_s: float = 120.0) -> None:
        self.port = free_port()
        self.controller_port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.run_dir = Path(tempfile.mkdtemp(prefix="shopstream-bench-kafka-"))
        self._timeout = start_timeout_s
        self._started = False

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SHOPSTREAM_RUN_DIR": str(self.run_dir),
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(self.controller_port),
            "KAFKA_START_TIMEOUT": str(int(self._timeout)),
        }

    def _kafka_sh(self, command: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(KAFKA_SH), command],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    @property
    def pid(self) -> int | None:
        return broker_pid_in(self.run_dir)

    def start(self) -> BenchBroker:
        libs = STACK_RUN_DIR / "kafka" / "libs"
        if not (libs / ".pom.sha256").exists():
            raise SystemExit(f"bench: no Kafka jars in {libs} (make kafka-jars fetches them)")
        (self.run_dir / "kafka").mkdir(parents=True)
        (self.run_dir / "kafka" / "libs").symlink_to(libs)
        started = time.monotonic()
        out = self._kafka_sh("start", self._timeout + 30)
        self._started = True
        if out.returncode != 0:
            self.stop()
            raise SystemExit(f"bench: own broker did not start:\n{out.stdout}\n{out.stderr}")
        self.start_s = time.monotonic() - started
        self._create_topics()
        return self

    def _create_topics(self) -> None:
        from shopstream_platform.kafka.admin import ensure_topics
        from shopstream_platform.kafka.topics import load_registry
        from shopstream_platform.settings import KafkaSettings

        # Every registry topic, as `shopstream up` creates them: the services expect them.
        specs = load_registry().with_dlqs()
        ensure_topics(KafkaSettings(bootstrap_servers=self.bootstrap), specs)
        self._warm_up(specs[0].name)

    def _warm_up(self, topic: str, timeout_s: float = 90) -> None:
        """Until a consumer group can commit: a fresh broker creates __consumer_offsets on the
        first group request and loads its partitions after, and the benches' first step commits
        groups at the topics' ends (NOT_COORDINATOR before that). A consumer's commit waits for
        the coordinator itself. (Admin-client offset queries in flight here crashed the process
        with a segfault in the client, three times under load: not used.)"""
        from confluent_kafka import Consumer, KafkaException, TopicPartition

        time.sleep(2.0)  # new partitions' leaders settle
        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": "bench-warmup",
                "enable.auto.commit": False,
            }
        )
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                try:
                    consumer.commit(offsets=[TopicPartition(topic, 0, 0)], asynchronous=False)
                    break
                except KafkaException:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
        finally:
            consumer.close()
        time.sleep(1.0)  # the other __consumer_offsets partitions finish loading

    def stop(self) -> None:
        if self._started:
            self._started = False
            pid = self.pid
            out = self._kafka_sh("stop", 90)
            if out.returncode != 0 and pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            # The JVM may still be writing its data directory: gone first, then removed.
            deadline = time.monotonic() + 30
            while pid and _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        if self.run_dir.exists():  # a file written while the tree was being removed
            time.sleep(1)
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> BenchBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def export(self) -> None:
        """Name this broker to the child processes (bench modules, their helpers)."""
        os.environ[BOOTSTRAP_ENV] = self.bootstrap
        os.environ[RUN_DIR_ENV] = str(self.run_dir)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def broker_pid_in(run_dir: Path) -> int | None:
    try:
        return int((run_dir / "kafka" / "single" / "kafka.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def bench_broker_pid() -> int | None:
    """The pid of the broker the benches use (for its CPU over a drain)."""
    run_dir = os.environ.get(RUN_DIR_ENV)
    return broker_pid_in(Path(run_dir)) if run_dir else None


_own: BenchBroker | None = None


def bench_bootstrap(given: str | None = None) -> str:
    """The broker a bench talks to: `given` (--bootstrap), else the one a parent started
    (SHOPSTREAM_BENCH_BOOTSTRAP), else a broker of this process's own, stopped at exit."""
    global _own
    if given:
        return require_loopback(given)
    if os.environ.get(BOOTSTRAP_ENV):
        return require_loopback(os.environ[BOOTSTRAP_ENV])
    if _own is None:
        print("bench: starting a Kafka broker of its own (the stack's broker is not touched)")
        _own = BenchBroker().start()
        _own.export()
        atexit.register(_own.stop)
        # atexit runs on SIGTERM only if it ends the interpreter the ordinary way.
        if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return _own.bootstrap
