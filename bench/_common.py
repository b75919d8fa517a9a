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
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
KAFKA_VERSION = "3.9.1"
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def default_bootstrap() -> str:
    return os.environ.get(BOOTSTRAP_ENV, DEFAULT_BOOTSTRAP)


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

        facts["confluent_kafka"] = confluent_kafka.version()[0]
        facts["librdkafka"] = confluent_kafka.libversion()[0]
        facts["grpcio"] = grpc.__version__
        facts["protobuf_backend"] = api_implementation.Type()
    except Exception:  # facts are best effort; never fail a run over them
        pass
    return facts
