"""watch_recovery (stream/recovery_watch.py): a recovery that stops moving ends the worker; a slow
one that moves, or none at all, does not."""

from __future__ import annotations

import asyncio

from shopstream_creator_score.stream.recovery_watch import RecoveryStalledError, watch_recovery


class FakeRecovery:
    def __init__(self, remaining: list[int]) -> None:
        self.in_recovery = True
        self._remaining = remaining

    def active_remaining_total(self) -> int:
        return self._remaining.pop(0) if len(self._remaining) > 1 else self._remaining[0]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 10.0  # every check is ten seconds later
        return self.now


async def run(recovery: FakeRecovery, checks: int) -> list[BaseException]:
    failures: list[BaseException] = []
    task = asyncio.create_task(
        watch_recovery(recovery, failures.append, stall_s=60, every_s=0, clock=Clock())
    )
    for _ in range(checks):
        await asyncio.sleep(0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return failures


async def test_a_recovery_that_stops_moving_ends_the_worker() -> None:
    failures = await run(FakeRecovery([500, 400, 300, 300]), 30)
    assert len(failures) == 1 and isinstance(failures[0], RecoveryStalledError)
    assert "300 changelog records" in str(failures[0])


async def test_a_slow_recovery_that_moves_is_left_alone() -> None:
    assert not await run(FakeRecovery(list(range(1_000, 0, -1))), 30)


async def test_no_recovery_or_a_finished_one_is_left_alone() -> None:
    idle = FakeRecovery([7])
    idle.in_recovery = False
    assert not await run(idle, 30)
    assert not await run(FakeRecovery([0]), 30)
