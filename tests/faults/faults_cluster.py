"""The fault suite's 3-node KRaft cluster: started with deploy/kafka/kafka.sh in a run directory
of its own, and the broker faults the scenarios inject (kill -9 of a node, a restart, two nodes
down), each followed by waiting for the condition that says the cluster took it in (a leader
elected elsewhere, the replicas back in sync), never for a fixed time."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from shopstream_platform.settings import KafkaSettings

REPO = Path(__file__).resolve().parents[2]
KAFKA_SH = REPO / "deploy" / "kafka" / "kafka.sh"
NODES = (1, 2, 3)
# kafka.sh: node N listens on BASE+N-1, its controller on BASE+100+N-1.
CONTROLLER_OFFSET = 100
# The broker's default broker.session.timeout.ms (9 s): a killed node is fenced by the
# controller after it; a restart before that rejoins a broker the controller still counts on.
BROKER_SESSION_TIMEOUT_S = 9.0


def wait_for(
    condition: Callable[[], bool], what: str, timeout_s: float, every_s: float = 0.2
) -> float:
    """Poll `condition` until it holds; the seconds it took. AssertionError after `timeout_s`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(every_s)
    return time.monotonic() - start


def _ports_free(ports: Iterable[int]) -> bool:
    for port in ports:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_base_port(start: int = 39_092, stop: int = 49_000, step: int = 7) -> int:
    """A base port whose three broker and three controller ports are free right now."""
    for base in range(start, stop, step):
        if _ports_free(
            [base + n - 1 for n in NODES] + [base + CONTROLLER_OFFSET + n - 1 for n in NODES]
        ):
            return base
    raise RuntimeError("no free ports for a 3-node cluster")


@dataclass
class Kill:
    """One injected broker fault and how the cluster took it."""

    node: int
    # Partitions the node led, with the records each took since the previous sample.
    led: dict[str, int] = field(default_factory=dict)
    leader_moved_s: float = 0.0
    fenced_s: float = 0.0
    restarted_s: float = 0.0
    in_sync_s: float = 0.0

    def describe(self) -> str:
        busiest = ", ".join(
            f"{tp} (+{n})" for tp, n in sorted(self.led.items(), key=lambda x: -x[1])[:3]
        )
        return (
            f"kill -9 node {self.node} (leader of {len(self.led)} partitions; busiest {busiest}): "
            f"new leaders in {self.leader_moved_s:.1f} s, fenced after {self.fenced_s:.1f} s, "
            f"restarted in {self.restarted_s:.1f} s, replicas in sync {self.in_sync_s:.1f} s later"
        )


class Cluster:
    """kafka.sh's cluster in `run_dir` on `base_port`..; `owned`: started here, stopped at the end."""

    def __init__(self, run_dir: Path, base_port: int, *, owned: bool) -> None:
        self.run_dir = run_dir
        self.base_port = base_port
        self.owned = owned
        self.env = {
            **os.environ,
            "SHOPSTREAM_RUN_DIR": str(run_dir),
            "KAFKA_CLUSTER_BASE_PORT": str(base_port),
            "KAFKA_START_TIMEOUT": "180",
        }
        self.bootstrap = ",".join(f"127.0.0.1:{self.port(n)}" for n in NODES)
        self._admin: AdminClient | None = None

    @classmethod
    def from_env(cls) -> Cluster:
        """SHOPSTREAM_FAULTS_RUN_DIR and SHOPSTREAM_FAULTS_BASE_PORT: a cluster kept between runs
        (for working on the suite); otherwise a fresh one in a temporary directory on free ports,
        so the suite never touches the stack's or test-cluster's brokers."""
        run_dir = os.environ.get("SHOPSTREAM_FAULTS_RUN_DIR")
        if run_dir:
            return cls(
                Path(run_dir),
                int(os.environ.get("SHOPSTREAM_FAULTS_BASE_PORT", "39092")),
                owned=False,
            )
        return cls(
            Path(tempfile.mkdtemp(prefix="shopstream-faults-")), free_base_port(), owned=True
        )

    def port(self, node: int) -> int:
        return self.base_port + node - 1

    def settings(self, **overrides: object) -> KafkaSettings:
        return KafkaSettings(
            bootstrap_servers=self.bootstrap,
            replication_factor=3,
            min_insync_replicas=2,
            connect_timeout_s=20,
            **overrides,  # type: ignore[arg-type]
        )

    # --- kafka.sh -----------------------------------------------------------------------------

    def _sh(self, *args: str, timeout_s: float = 240) -> str:
        out = subprocess.run(
            ["bash", str(KAFKA_SH), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"kafka.sh {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
        return out.stdout

    def start(self) -> Cluster:
        libs = self.run_dir / "kafka" / "libs"
        if not libs.exists():
            stack_libs = (
                Path(os.environ.get("SHOPSTREAM_STACK_RUN_DIR", REPO / ".run")) / "kafka" / "libs"
            )
            if not (stack_libs / ".pom.sha256").exists():
                raise RuntimeError(f"no Kafka jars in {stack_libs}: make kafka-jars")
            libs.parent.mkdir(parents=True, exist_ok=True)
            libs.symlink_to(stack_libs)
        self._sh("cluster-start")
        return self

    def stop(self) -> None:
        if self._admin is not None:
            self._admin = None
        if self.owned:
            self._sh("cluster-stop", timeout_s=120)
            shutil.rmtree(self.run_dir, ignore_errors=True)
        else:
            # A kept cluster is left running, but whole: a failed scenario may have left a node down.
            for node in NODES:
                self._sh("node-start", str(node))

    def kill(self, node: int) -> None:
        """SIGKILL: the broker gets no chance to hand its leaderships over."""
        self._sh("node-kill", str(node))

    def start_node(self, node: int) -> float:
        """Start a node and wait until it logs that it serves; the seconds it took."""
        start = time.monotonic()
        self._sh("node-start", str(node))
        return time.monotonic() - start

    # --- what the cluster says ----------------------------------------------------------------

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap})
        return self._admin

    def partitions(
        self, topics: Iterable[str] | None = None
    ) -> dict[str, tuple[int, tuple[int, ...]]]:
        """`topic/partition` -> (leader node, in-sync replicas), -1 when it has no leader."""
        wanted = set(topics) if topics is not None else None
        meta = self.admin.list_topics(timeout=10)
        return {
            f"{t.topic}/{p.id}": (p.leader, tuple(p.isrs))
            for t in meta.topics.values()
            if not t.topic.startswith("__") and (wanted is None or t.topic in wanted)
            for p in t.partitions.values()
        }

    def live_brokers(self) -> set[int]:
        """Brokers the metadata lists: the controller drops a node once it fenced it."""
        return set(self.admin.list_topics(timeout=10).brokers)

    def end_offsets(self, names: Iterable[str]) -> dict[str, int]:
        """High watermark of each `topic/partition`."""
        wanted = [TopicPartition(*_split(name)) for name in names]
        if not wanted:
            return {}
        futures = self.admin.list_offsets(
            {tp: OffsetSpec.latest() for tp in wanted},  # type: ignore[no-untyped-call]
            request_timeout=15,
        )
        return {f"{tp.topic}/{tp.partition}": f.result().offset for tp, f in futures.items()}

    def in_sync(self) -> bool:
        """Every partition has a leader and all three replicas in sync."""
        try:
            return all(
                leader >= 0 and len(isr) == len(NODES) for leader, isr in self.partitions().values()
            )
        except Exception:
            return False

    def busiest_leader(self, before: dict[str, int]) -> tuple[int, dict[str, int]]:
        """The node leading the partitions that took the most records since `before`, and those
        partitions with their growth."""
        layout = self.partitions()
        now = self.end_offsets(layout)
        growth = {tp: now[tp] - before.get(tp, 0) for tp in now}
        per_node: Counter[int] = Counter()
        for tp, (leader, _) in layout.items():
            per_node[leader] += growth.get(tp, 0)
        node = max((n for n in per_node if n in NODES), key=lambda n: per_node[n])
        led = {
            tp: growth[tp]
            for tp, (leader, _) in layout.items()
            if leader == node and growth.get(tp)
        }
        return node, led

    def kill_leader(self, before: dict[str, int]) -> Kill:
        """kill -9 the busiest leader, wait for its partitions to get new leaders and for the
        controller to fence it (the session timeout), restart it, wait for full ISR again."""
        node, led = self.busiest_leader(before)
        fault = Kill(node, led)
        killed_at = time.monotonic()
        self.kill(node)
        moved = set(led)

        def leaders_moved() -> bool:
            try:
                layout = self.partitions({tp.rsplit("/", 1)[0] for tp in moved})
            except Exception:
                return False
            return all(layout.get(tp, (-1, ()))[0] not in (-1, node) for tp in moved)

        fault.leader_moved_s = wait_for(
            leaders_moved, f"new leaders for node {node}'s partitions", 120
        )
        wait_for(lambda: node not in self._brokers_or_all(), f"node {node} fenced", 120)
        fault.fenced_s = time.monotonic() - killed_at
        fault.restarted_s = self.start_node(node)
        fault.in_sync_s = self.wait_in_sync()
        return fault

    def wait_in_sync(self, timeout_s: float = 240.0) -> float:
        """Wait until every partition has a leader and three in-sync replicas; the seconds."""
        return wait_for(self.in_sync, "every replica back in sync", timeout_s, every_s=0.5)

    def _brokers_or_all(self) -> set[int]:
        try:
            return self.live_brokers()
        except Exception:
            return set(NODES)


def _split(name: str) -> tuple[str, int]:
    topic, _, partition = name.rpartition("/")
    return topic, int(partition)
