"""A child process kept running beside its service, and its health when it keeps exiting."""

import asyncio
from pathlib import Path

import pytest
from pydantic import BaseModel

from shopstream_platform.child_process import CRASH_LOOP_EXITS, ChildProcess


class NoSettings(BaseModel):
    pass


async def test_a_child_that_keeps_exiting_is_restarted_counted_and_unhealthy() -> None:
    restarts: list[int] = []
    # `python -m site` prints its paths and exits at once: a child that never stays up.
    child = ChildProcess(
        "flaky",
        "site",
        NoSettings(),
        restart_backoff_s=0.05,
        on_restart=lambda: restarts.append(1),
    )
    assert child.health() is None
    task = asyncio.create_task(child.run())
    try:
        for _ in range(600):  # python starts take seconds on a loaded machine
            if child.health() is not None:
                break
            await asyncio.sleep(0.05)
        reason = child.health()
        assert reason is not None and "flaky" in reason
        assert len(restarts) >= CRASH_LOOP_EXITS
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_child_that_stays_up_is_healthy_and_stopped_with_its_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sleeper_child.py").write_text("import time\ntime.sleep(600)\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    child = ChildProcess("sleeper", "sleeper_child", NoSettings(), restart_backoff_s=0.05)
    task = asyncio.create_task(child.run())
    try:
        await asyncio.sleep(1.0)
        assert child.health() is None and child.pid is not None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    # SIGTERM on shutdown: the child is gone.
    proc = await asyncio.create_subprocess_exec("kill", "-0", str(child.pid))
    assert await proc.wait() != 0
