"""The supervisor restarts a service that exits, with a growing back-off, and stops on SIGTERM."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from shopstream_cli.supervisor import Backoff, read_state


def test_backoff_doubles_to_its_cap_and_resets_after_a_healthy_run() -> None:
    backoff = Backoff(initial_s=1, max_s=30, reset_after_s=60)
    delays = []
    previous = None
    for _ in range(7):
        previous = backoff.delay(previous, uptime_s=0.5)
        delays.append(previous)
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.delay(30, uptime_s=61) == 1


def _wait_for(predicate, timeout_s: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_a_crashing_service_is_restarted_and_counted_until_sigterm(tmp_path: Path) -> None:
    state = tmp_path / "svc.json"
    log = tmp_path / "svc.log"
    supervisor = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shopstream_cli.supervisor",
            "--state",
            str(state),
            "--log",
            str(log),
            "--initial-backoff",
            "0.05",
            "--max-backoff",
            "0.2",
            "--",
            sys.executable,
            "-c",
            "import sys; print('up'); sys.exit(3)",
        ]
    )
    try:
        snapshot = _wait_for(lambda: (s := read_state(state)) and s["restarts"] >= 3 and s)
        assert snapshot["last_exit_code"] == 3
        assert snapshot["supervisor_pid"] == supervisor.pid
        assert [h["code"] for h in snapshot["history"]][:3] == [3, 3, 3]
    finally:
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=10) == 0
    text = log.read_text()
    assert "up" in text and "supervisor: exited with 3" in text


def test_sigterm_reaches_the_service_and_nothing_restarts(tmp_path: Path) -> None:
    state = tmp_path / "svc.json"
    marker = tmp_path / "terminated"
    service = (
        "import signal, sys, time\n"
        f"signal.signal(signal.SIGTERM, lambda *_: (open({str(marker)!r}, 'w').close(), sys.exit(0)))\n"
        "time.sleep(600)\n"
    )
    supervisor = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shopstream_cli.supervisor",
            "--state",
            str(state),
            "--log",
            str(tmp_path / "svc.log"),
            "--",
            sys.executable,
            "-c",
            service,
        ]
    )
    pid = _wait_for(lambda: (s := read_state(state)) and s["pid"])
    time.sleep(0.3)  # let the service install its handler
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=10) == 0
    assert marker.exists()
    final = read_state(state)
    assert final is not None
    assert final["restarts"] == 0 and final["pid"] is None and final["stopping"] is True
    assert final["last_exit_code"] == 0
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return
    raise AssertionError("the service outlived its supervisor")
