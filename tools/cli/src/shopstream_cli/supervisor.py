"""Restart-on-exit supervision of one local-stack service (`python -m shopstream_cli.supervisor`).

`shopstream up` starts one supervisor per service, each in a session of its own, and records the
supervisor's pid. The supervisor runs the service as its child and, when the service exits
without being asked to, starts it again after a back-off (1 s doubling to 30 s; back to 1 s once a
run lasted a minute), so one crash does not leave the stack half down and a crash loop does not
spin. The child's pid, the restart count and the last exit are kept in a JSON state file that
`shopstream status` shows. SIGTERM or SIGINT to the supervisor is passed on to the service, which
shuts down gracefully; the supervisor exits once it has.

    python -m shopstream_cli.supervisor --state S.json --log S.log -- python -m shopstream_catalog
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any


@dataclass(frozen=True)
class Backoff:
    initial_s: float = 1.0
    max_s: float = 30.0
    # A run at least this long was healthy: the next crash starts from `initial_s` again.
    reset_after_s: float = 60.0

    def delay(self, previous_s: float | None, uptime_s: float) -> float:
        if previous_s is None or uptime_s >= self.reset_after_s:
            return self.initial_s
        return min(previous_s * 2, self.max_s)


@dataclass
class SupervisorState:
    """What `shopstream status` reads: written by the supervisor at every change."""

    supervisor_pid: int
    command: list[str]
    pid: int | None = None
    restarts: int = 0
    started_at: float | None = None
    last_exit_code: int | None = None
    last_exit_at: float | None = None
    next_start_at: float | None = None
    stopping: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)

    def save(self, path: Path) -> None:
        # Written whole and renamed, so a reader never sees half a file.
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, path)


def read_state(path: Path) -> dict[str, Any] | None:
    """The state a supervisor last wrote, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class Supervisor:
    def __init__(
        self,
        command: Sequence[str],
        state_file: Path,
        log_file: Path,
        backoff: Backoff = Backoff(),
    ) -> None:
        self._command = list(command)
        self._state_file = state_file
        self._log_file = log_file
        self._backoff = backoff
        self._child: subprocess.Popen[bytes] | None = None
        self.state = SupervisorState(supervisor_pid=os.getpid(), command=self._command)

    def stop(self, signum: int = signal.SIGTERM, _frame: FrameType | None = None) -> None:
        """Signal handler: no restart from now on; the running service gets SIGTERM."""
        self.state.stopping = True
        child = self._child
        if child is not None and child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGTERM)

    def stop_requested(self) -> bool:
        return self.state.stopping

    def run(self) -> int:
        delay: float | None = None
        while not self.stop_requested():
            started = time.monotonic()
            code = self._run_once()
            uptime = time.monotonic() - started
            self.state.pid = None
            self.state.last_exit_code = code
            self.state.last_exit_at = time.time()
            self.state.history = [*self.state.history[-9:], {"code": code, "uptime_s": uptime}]
            if self.stop_requested():  # set by the signal handler while the service ran
                break
            delay = self._backoff.delay(delay, uptime)
            self.state.restarts += 1
            self.state.next_start_at = time.time() + delay
            self.state.save(self._state_file)
            self._note(
                f"exited with {code} after {uptime:.1f} s; restart {self.state.restarts} "
                f"in {delay:.0f} s"
            )
            self._sleep(delay)
        self.state.save(self._state_file)
        return 0

    def _run_once(self) -> int:
        with self._log_file.open("ab") as log:
            self._child = subprocess.Popen(self._command, stdout=log, stderr=log)
        self.state.pid = self._child.pid
        self.state.started_at = time.time()
        self.state.next_start_at = None
        self.state.save(self._state_file)
        if self.stop_requested():  # SIGTERM arrived while starting: pass it on now.
            self.stop()
        return self._child.wait()

    def _sleep(self, seconds: float) -> None:
        # In short steps: a stop during the back-off ends it at once.
        deadline = time.monotonic() + seconds
        while not self.stop_requested() and time.monotonic() < deadline:
            time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    def _note(self, text: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        with self._log_file.open("a") as log:
            log.write(f"{stamp} supervisor: {text}\n")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="shopstream-supervisor", description=__doc__)
    p.add_argument("--state", type=Path, required=True, help="JSON state file")
    p.add_argument("--log", type=Path, required=True, help="the service's stdout and stderr")
    p.add_argument("--initial-backoff", type=float, default=Backoff.initial_s)
    p.add_argument("--max-backoff", type=float, default=Backoff.max_s)
    p.add_argument("command", nargs="+", help="the service's command line (after --)")
    args = p.parse_args(argv)
    supervisor = Supervisor(
        args.command,
        args.state,
        args.log,
        Backoff(initial_s=args.initial_backoff, max_s=args.max_backoff),
    )
    signal.signal(signal.SIGTERM, supervisor.stop)
    signal.signal(signal.SIGINT, supervisor.stop)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
