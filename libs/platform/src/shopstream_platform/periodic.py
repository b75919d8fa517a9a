"""Periodic background steps (gauges, sweeps, checks) whose failures never end the service.

A service's background loop used to be a `while True` that let any exception out, and a dying
background task ends the service (runtime.py): a "database is locked" while refreshing a gauge
took catalog or commerce down. Here a step that fails transiently (a locked SQLite file, a lost
connection, a time-out: what a retry can fix) is retried with a doubling back-off, capped at
the step's interval; any other failure is logged with its traceback and the step runs again at
its next interval (a bug in a gauge is not worth an outage either). Both are counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from shopstream_platform.db.errors import DbFailure, classify_db_error
from shopstream_platform.errors import UnavailableError
from shopstream_platform.kafka.dispatch import is_transient

log = logging.getLogger(__name__)

Step = Callable[[], Awaitable[object]]
FIRST_RETRY_S = 0.5


def is_transient_failure(
    error: BaseException, transient: tuple[type[BaseException], ...] = ()
) -> bool:
    """Worth a quick retry: a database failure a retry can fix, a time-out, a lost connection,
    an unavailable dependency, or a type the caller declared (unless deterministic)."""
    if classify_db_error(error) is DbFailure.TRANSIENT:
        return True
    return is_transient(error, (TimeoutError, ConnectionError, UnavailableError, *transient))


def periodic(
    name: str,
    step: Step,
    *,
    every_s: float,
    first_after_s: float = 0.0,
    transient: tuple[type[BaseException], ...] = (),
    on_failure: Callable[[str], None] = lambda kind: None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Callable[[], Coroutine[Any, Any, None]]:
    """A runtime task that runs `step` every `every_s` (the first after `first_after_s`) until
    cancelled. `on_failure(kind)` hears of each failed run ("transient" or "other")."""

    async def loop() -> None:
        await sleep(first_after_s)
        retry_s = FIRST_RETRY_S
        while True:
            try:
                await step()
            except Exception as exc:
                if is_transient_failure(exc, transient):
                    on_failure("transient")
                    wait = min(retry_s, every_s)
                    log.warning(
                        "periodic step failed; retrying",
                        extra={"task": name, "error": repr(exc), "retry_in_s": wait},
                    )
                    retry_s *= 2
                    await sleep(wait)
                    continue
                on_failure("other")
                log.exception(
                    "periodic step failed; running it again next interval", extra={"task": name}
                )
            retry_s = FIRST_RETRY_S
            await sleep(every_s)

    return loop
