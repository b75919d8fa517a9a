"""Periodic background steps (periodic.py): failures are retried, never fatal."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sqlalchemy.exc import OperationalError

from shopstream_platform.periodic import is_transient_failure, periodic


class Stop(BaseException):
    """Ends the loop from the fake sleep, as a cancellation would."""


def locked() -> OperationalError:
    return OperationalError("SELECT 1", {}, sqlite3.OperationalError("database is locked"))


async def run(
    failures: list[BaseException | None], *, every_s: float = 10.0
) -> tuple[list[float], list[str], int]:
    """Run the loop over one outcome per step (None: success) and stop after the last; returns
    the waits between steps, the failure kinds heard, and the steps run."""
    waits: list[float] = []
    kinds: list[str] = []
    runs = 0

    async def step() -> None:
        nonlocal runs
        runs += 1
        outcome = failures[runs - 1]
        if outcome is not None:
            raise outcome

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if runs == len(failures):
            raise Stop

    loop = periodic(
        "t", step, every_s=every_s, first_after_s=1.0, on_failure=kinds.append, sleep=sleep
    )
    with pytest.raises(Stop):
        await loop()
    return waits, kinds, runs


async def test_a_transient_failure_is_retried_with_back_off_capped_at_the_interval() -> None:
    waits, kinds, runs = await run([locked(), locked(), TimeoutError(), None], every_s=1.5)
    assert runs == 4
    assert waits == [1.0, 0.5, 1.0, 1.5, 1.5]  # first_after_s, 0.5, 1.0, 2.0 capped, interval
    assert kinds == ["transient"] * 3


async def test_any_other_failure_waits_for_the_next_interval_and_never_ends_the_loop() -> None:
    waits, kinds, runs = await run([ValueError("a bug"), None, None])
    assert runs == 3
    assert waits == [1.0, 10.0, 10.0, 10.0]
    assert kinds == ["other"]


async def test_the_back_off_starts_again_after_a_success() -> None:
    waits, _, _ = await run([locked(), locked(), None, locked(), None])
    assert waits == [1.0, 0.5, 1.0, 10.0, 0.5, 10.0]


async def test_a_cancelled_loop_ends() -> None:
    task = asyncio.create_task(periodic("t", lambda: asyncio.sleep(0), every_s=0.01)())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_what_is_transient() -> None:
    assert is_transient_failure(locked())
    assert is_transient_failure(ConnectionResetError())
    assert not is_transient_failure(
        OperationalError("SELECT 1", {}, sqlite3.OperationalError("integer overflow"))
    )
    assert not is_transient_failure(ValueError())
    assert is_transient_failure(KeyError("x"), (KeyError,)) is False  # deterministic anyway
