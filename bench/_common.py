"""Helpers the bench scripts share: loopback-only addresses, machine facts, small statistics."""

from __future__ import annotations

import os
import platform
import socket
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
KAFKA_SH = REPO / "deploy" / "kafka" / "kafka.sh"
BOOTSTRAP_ENV = "SHOPSTREAM_BENCH_BOOTSTRAP"
KAFKA_VERSION = "3.9.1"
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def default_bootstrap() -> str:
    """The broker a bench uses unless --bootstrap names one: the one its parent started
    (SHOPSTREAM_BENCH_BOOTSTRAP), else a broker of its own (bench/_broker.py), never the local
    stack's: a bench writes into the services' own topics and groups."""
    from _broker import bench_bootstrap

    return bench_bootstrap()


def require_loopback(bootstrap: str) -> str:
    """Benchmarks only ever talk to this machine: refuse any other host."""
    for server in bootstrap.split(","):
        host = server.strip().rsplit(":", 1)[0]
        if host not in _LOOPBACK:
            raise SystemExit(f"bench: refusing non-loopback address {server!r} (127.0.0.1 only)")
    return bootstrap


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def clk_tck() -> int:
    return int(os.sysconf("SC_CLK_TCK"))


def proc_cpu_seconds(pid: int) -> float:
    """user+system CPU seconds of a process (all its threads) from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        # The command name may hold spaces; fields after the closing parenthesis are fixed.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / clk_tck()


def machine_facts() -> dict[str, Any]:
    cpu_model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kb = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_kb = int(line.split()[1])
                    break
    except OSError:
        pass
    java = "unknown"
    try:
        out = subprocess.run(
            ["java", "-version"], capture_output=True, text=True, timeout=20, check=False
        )
        java = (out.stderr or out.stdout).splitlines()[0].strip()
    except (OSError, subprocess.TimeoutExpired, IndexError):
        pass
    facts: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "mem_total_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "kafka": KAFKA_VERSION,
        "java": java,
    }
    try:
        import confluent_kafka
        import grpc
        from google.protobuf.internal import api_implementation

        ck_version = confluent_kafka.version()
        lib_version = confluent_kafka.libversion()
        facts["confluent_kafka"] = ck_version if isinstance(ck_version, str) else ck_version[0]
        facts["librdkafka"] = lib_version if isinstance(lib_version, str) else lib_version[0]
        facts["grpcio"] = grpc.__version__
        facts["protobuf_backend"] = api_implementation.Type()
    except Exception:  # facts are best effort; never fail a run over them
        pass
    return facts


class ForeignLoadMonitor:
    """Samples every process's CPU once a second while the benchmarks run and splits it into
    ours (this process and its descendants), Kafka brokers (any kafka.Kafka JVM) and other
    work. Other work competing for the cores makes the numbers low; this says how much there was.
    """

    def __init__(self, interval_s: float = 1.0) -> None:
        import threading

        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="foreign-load", daemon=True)
        self._cmdlines: dict[int, str] = {}
        self.cpu_s = {"ours": 0.0, "kafka_brokers": 0.0, "other": 0.0}
        self.other_by_command: dict[str, float] = {}
        self.elapsed_s = 0.0

    def _snapshot(self) -> dict[int, tuple[int, float]]:
        tick = clk_tck()
        procs: dict[int, tuple[int, float]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            procs[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
        return procs

    def _cmdline(self, pid: int) -> str:
        if pid not in self._cmdlines:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    self._cmdlines[pid] = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                self._cmdlines[pid] = "?"
        return self._cmdlines[pid]

    def _is_ours(self, pid: int, procs: dict[int, tuple[int, float]]) -> bool:
        me = os.getpid()
        for _ in range(64):
            if pid == me:
                return True
            if pid not in procs or pid <= 1:
                return False
            pid = procs[pid][0]
        return False

    def _run(self) -> None:
        import time

        before = self._snapshot()
        t0 = time.monotonic()
        while not self._stop.wait(self._interval):
            after = self._snapshot()
            for pid, (_ppid, cpu) in after.items():
                used = cpu - before.get(pid, (0, 0.0))[1] if pid in before else 0.0
                if used <= 0:
                    continue
                if self._is_ours(pid, after):
                    self.cpu_s["ours"] += used
                    continue
                cmd = self._cmdline(pid)
                if "kafka.Kafka" in cmd:
                    self.cpu_s["kafka_brokers"] += used
                else:
                    self.cpu_s["other"] += used
                    key = cmd[:80] or f"pid {pid}"
                    self.other_by_command[key] = self.other_by_command.get(key, 0.0) + used
            before = after
            self.elapsed_s = time.monotonic() - t0

    def __enter__(self) -> ForeignLoadMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def summary(self) -> dict[str, Any]:
        elapsed = self.elapsed_s or 1.0
        top = sorted(self.other_by_command.items(), key=lambda kv: -kv[1])[:3]
        return {
            "seconds": round(self.elapsed_s, 1),
            "cores": {k: round(v / elapsed, 2) for k, v in self.cpu_s.items()},
            "other_top": [{"command": c, "cores": round(v / elapsed, 2)} for c, v in top],
        }


def counter_total(registry: Any, name: str) -> float:
    """Sum of a Prometheus counter's samples over all label values."""
    return sum(s.value for m in registry.collect() for s in m.samples if s.name == name)


def histogram_buckets(registry: Any, name: str) -> list[tuple[float, float]]:
    """A histogram's cumulative buckets (upper bound, count), ascending."""
    return sorted(
        (float(s.labels["le"]), s.value)
        for m in registry.collect()
        for s in m.samples
        if s.name == f"{name}_bucket"
    )


def bucket_quantile(
    after: list[tuple[float, float]], q: float, before: list[tuple[float, float]] | None = None
) -> float | None:
    """The upper bound of the bucket holding quantile q of the observations (those made since
    `before`, when given); None without observations."""
    counts = [(le, a - (before[i][1] if before else 0.0)) for i, (le, a) in enumerate(after)]
    if not counts or counts[-1][1] == 0:
        return None
    total = counts[-1][1]
    return next(le for le, c in counts if c >= q * total)
