"""A supervised child process of a service (its combiner), started as a runtime task.

The child gets the parent's settings as JSON in one environment variable, secrets included (the
parent may have been configured in code, not by environment), so it runs with exactly the
parent's configuration. It dies with its parent (`die_with_parent`, PR_SET_PDEATHSIG: a kill -9
of the service leaves no orphan consuming behind it), is restarted after a back-off when it exits by itself
(it is stateless: a restart resumes from committed offsets), and is sent SIGTERM and waited for
when the service shuts down.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, SecretStr

log = logging.getLogger(__name__)

SETTINGS_ENV = "SHOPSTREAM_CHILD_SETTINGS"
PARENT_ENV = "SHOPSTREAM_CHILD_PARENT_PID"
_PR_SET_PDEATHSIG = 1

S = TypeVar("S", bound=BaseModel)


def settings_json(settings: BaseModel) -> str:
    """The settings as JSON with secrets in clear (pydantic masks them otherwise)."""

    def plain(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, Path):
            return str(value)
        raise TypeError(f"not JSON: {type(value).__name__}")

    return json.dumps(settings.model_dump(mode="python"), default=plain)


def child_settings(cls: type[S]) -> S:
    """In the child: the parent's settings."""
    raw = os.environ.get(SETTINGS_ENV)
    if raw is None:
        raise RuntimeError(f"{SETTINGS_ENV} is not set: start this module from its service")
    return cls.model_validate(json.loads(raw))


def die_with_parent() -> None:
    """In the child, first thing: be killed when the service dies, even by kill -9.

    Set here rather than between fork and exec (`preexec_fn` is not safe in a process with
    threads, and a service has several). A parent that died before this call is caught by the
    parent pid check."""
    expected = os.environ.get(PARENT_ENV)
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: the child may outlive a killed parent
        return
    if expected is not None and os.getppid() != int(expected):
        os._exit(1)


CRASH_LOOP_EXITS = 3
CRASH_LOOP_WINDOW_S = 60.0


def free_local_port() -> int:
    """A port nothing listens on now (for a child's own endpoint, e.g. its metrics)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ChildProcess:
    """`python -m <module>` kept running for as long as the service runs."""

    def __init__(
        self,
        name: str,
        module: str,
        settings: BaseModel,
        *,
        restart_backoff_s: float,
        stop_grace_s: float = 30.0,
        on_restart: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self._module = module
        self._env = {
            **os.environ,
            SETTINGS_ENV: settings_json(settings),
            PARENT_ENV: str(os.getpid()),
        }
        self._backoff_s = restart_backoff_s
        self._grace_s = stop_grace_s
        self._on_restart = on_restart
        self.pid: int | None = None
        # When it exited lately (monotonic): a child that keeps exiting is crash-looping.
        self._exits: list[float] = []
        self._running = False

    def health(self) -> str | None:
        """For `Runtime.add_health_check`: why the child is not doing its work, or None. It is
        unhealthy while down between restarts after exiting 3 times within a minute."""
        now = time.monotonic()
        self._exits = [t for t in self._exits if now - t < CRASH_LOOP_WINDOW_S]
        if len(self._exits) >= CRASH_LOOP_EXITS and not self._running:
            return f"{self.name} exited {len(self._exits)} times in the last minute"
        if len(self._exits) >= CRASH_LOOP_EXITS + 2:
            return f"{self.name} is crash-looping ({len(self._exits)} exits in the last minute)"
        return None

    async def run(self) -> None:
        """The runtime task: never returns; cancelled at shutdown."""
        while True:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                self._module,
                env=self._env,
            )
            self.pid = proc.pid
            self._running = True
            log.info("child process started", extra={"child": self.name, "pid": proc.pid})
            try:
                code = await proc.wait()
            except asyncio.CancelledError:
                await self._stop(proc)
                raise
            self._running = False
            self._exits.append(time.monotonic())
            log.warning(
                "child process exited; restarting",
                extra={"child": self.name, "pid": proc.pid, "exit_code": code},
            )
            if self._on_restart is not None:
                self._on_restart()
            await asyncio.sleep(self._backoff_s)

    async def _stop(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), self._grace_s)
        except TimeoutError:
            log.error("child process ignored SIGTERM; killing it", extra={"child": self.name})
            proc.kill()
            await proc.wait()
