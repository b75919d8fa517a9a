"""Ends the worker when Faust's table recovery stops making progress, so that its supervisor
starts it again instead of leaving it answering from tables that no longer change.

Seen with two processes (docs/creator-score.md, known limits): after a rebalance, Faust waited
for changelog records that never came ("No event received for active tp ... since recovery
start") while aiokafka kept fetching, and the process applied no input for minutes. A fresh
start recovers. Progress is the number of changelog records recovery still needs: a slow but
moving recovery is left alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class RecoveryStalledError(RuntimeError):
    """Faust's table recovery needed records and received none for too long."""


async def watch_recovery(
    recovery: Any,
    fail: Callable[[BaseException], None],
    *,
    stall_s: float,
    every_s: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """`recovery`: Faust's `app.tables.recovery` (`in_recovery`, `active_remaining_total()`);
    `fail`: ends the worker (`PlatformFaustApp.fail`). Returns after failing it."""
    remaining: int | None = None
    since = clock()
    while True:
        await asyncio.sleep(every_s)
        if not recovery.in_recovery:
            remaining = None
            continue
        now_remaining = int(recovery.active_remaining_total())
        if now_remaining != remaining or now_remaining <= 0:
            remaining, since = now_remaining, clock()
            continue
        stalled_s = clock() - since
        if stalled_s >= stall_s:
            error = RecoveryStalledError(
                f"table recovery made no progress for {stalled_s:.0f} s "
                f"({now_remaining} changelog records still needed)"
            )
            log.critical("table recovery stalled; ending the worker", extra={"error": str(error)})
            fail(error)
            return
