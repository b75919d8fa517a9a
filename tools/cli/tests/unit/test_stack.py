"""The local stack's lifecycle with stand-in services (no broker): supervisors restart a killed
service and `status` says so; `shopstream down` leaves no process of the stack behind."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shopstream_cli import stack
from shopstream_cli.supervisor import read_state
from shopstream_platform.settings import KafkaSettings

DUMMY = Path(__file__).with_name("dummy_service.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(predicate: Callable[[], Any], timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes (its parent has not reaped it yet).
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def local_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Four supervised stand-in services under a run dir of their own; their addresses."""
    monkeypatch.setenv("SHOPSTREAM_RUN_DIR", str(tmp_path))
    addresses = {}
    for spec in stack.SERVICES:
        port = _free_port()
        addresses[spec.name] = f"127.0.0.1:{port}"
        env = {**os.environ, "DUMMY_PORT": str(port)}
        if spec.name == "ads":
            env["DUMMY_GRANDCHILD"] = "1"
        stack.start_supervised(spec, [sys.executable, str(DUMMY)], env, initial_backoff_s=5.0)
    for address in addresses.values():
        _wait_for(lambda a=address: stack.health(a) == "SERVING")
    yield addresses
    # Whatever a failed test left running.
    for spec in stack.SERVICES:
        pgid = int(spec.pid_file.read_text()) if spec.pid_file.exists() else None
        if pgid is not None and stack.group_members(pgid):
            os.killpg(pgid, signal.SIGKILL)


def _stack_pids() -> set[int]:
    pids = set()
    for spec in stack.SERVICES:
        pgid = int(spec.pid_file.read_text())
        pids |= set(stack.group_members(pgid))
    return pids


def test_status_is_healthy_only_with_kafka_and_every_service_serving(
    local_stack: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(stack, "probe_kafka", lambda *_a, **_k: 1)
    kafka = KafkaSettings()
    assert stack.status(kafka, local_stack, as_json=True) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["healthy"] is True
    assert [c["state"] for c in report["components"]] == ["UP"] + ["SERVING"] * 4
    assert all(c["restarts"] == 0 for c in report["components"][1:])

    # kill -9 one service: unhealthy until its supervisor has started it again.
    catalog = stack.SERVICES[0]
    first = read_state(catalog.state_file)
    assert first is not None
    os.kill(first["pid"], signal.SIGKILL)
    _wait_for(lambda: (s := read_state(catalog.state_file)) and s["restarts"] == 1)
    assert stack.status(kafka, local_stack, as_json=True) == 1
    report = json.loads(capsys.readouterr().out)
    row = report["components"][1]
    assert (row["name"], row["state"], row["healthy"]) == ("catalog", "RESTARTING", False)
    assert "exited with -9" in row["detail"]

    _wait_for(lambda: stack.health(local_stack["catalog"]) == "SERVING")
    assert stack.status(kafka, local_stack, as_json=False) == 0
    table = capsys.readouterr().out
    second = read_state(catalog.state_file)
    assert second is not None and second["pid"] != first["pid"]
    assert f"pid {second['pid']}" in table

    # Kafka away: unhealthy whatever the services say.
    monkeypatch.setattr(stack, "probe_kafka", lambda *_a, **_k: 0)
    assert stack.status(kafka, local_stack, as_json=False) == 1
    assert "not healthy: kafka" in capsys.readouterr().out


def test_status_from_outside_exits_1_without_kafka(local_stack: dict[str, str]) -> None:
    env = {
        **os.environ,
        "SHOPSTREAM_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{_free_port()}",
        **{f"SHOPSTREAM_CLI_{n.upper().replace('-', '_')}_ADDR": a for n, a in local_stack.items()},
    }
    result = subprocess.run(
        [sys.executable, "-m", "shopstream_cli", "status", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    states = {c["name"]: c["state"] for c in report["components"]}
    assert states == {
        "kafka": "DOWN",
        "catalog": "SERVING",
        "commerce": "SERVING",
        "ads": "SERVING",
        "creator-score": "SERVING",
    }


def test_down_leaves_no_process_of_the_stack(local_stack: dict[str, str]) -> None:
    pids = _stack_pids()
    # Per service a supervisor and a service; ads also has a child that ignores SIGTERM.
    assert len(pids) == 9
    result = subprocess.run(
        [sys.executable, "-m", "shopstream_cli", "down", "--keep-kafka", "--timeout", "5"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("stopped ") == 4
    assert "ads did not stop in 5 s: killed" in result.stdout
    assert [p for p in pids if _alive(p)] == []
    assert not any(s.pid_file.exists() for s in stack.SERVICES)


def test_down_clears_a_service_whose_supervisor_was_killed(local_stack: dict[str, str]) -> None:
    commerce = stack.SERVICES[1]
    supervisor = int(commerce.pid_file.read_text())
    state = read_state(commerce.state_file)
    assert state is not None
    os.kill(supervisor, signal.SIGKILL)
    _wait_for(lambda: not _alive(supervisor))
    assert _alive(state["pid"])
    assert stack.status(KafkaSettings(), local_stack, as_json=False) == 1
    assert stack.down(keep_kafka=True, timeout_s=3) == 0
    assert not _alive(state["pid"])


def test_logs_prints_the_last_lines_of_a_service_log(tmp_path: Path) -> None:
    env = {**os.environ, "SHOPSTREAM_RUN_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "shopstream_cli", "logs", "commerce", "-n", "2"]
    missing = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "has not run here" in missing.stderr
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "commerce.log").write_text("one\ntwo\nthree\n")
    shown = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and shown.stdout == "two\nthree\n"
