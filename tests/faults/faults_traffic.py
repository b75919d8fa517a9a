"""Traffic for the scenarios: the simulated day (tools/simulator) against the fault stack, with
its telemetry in hand so a fault can be timed by how far the day got."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from faults_stack import Stack

from shopstream_platform.settings import AuthSettings, KafkaSettings
from shopstream_simulator import SimConfig, Summary, simulate
from shopstream_simulator.ledger import Ledger
from shopstream_simulator.monitor import Telemetry
from shopstream_simulator.plan import LARGE_DAY, NORMAL_DAY

SIMULATING = "simulating"


@dataclass
class Day:
    """One simulated day running in the background."""

    config: SimConfig
    telemetry: Telemetry
    task: asyncio.Task[Summary] = field(init=False)

    def start(self) -> Day:
        self.task = asyncio.create_task(simulate(self.config, telemetry=self.telemetry))
        return self

    @property
    def ledger(self) -> Ledger:
        return self.telemetry.ledger

    @property
    def simulating(self) -> bool:
        return self.telemetry.phase == SIMULATING

    @property
    def planned_events(self) -> float:
        return self.config.rate * self.config.duration_s

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        """Wait for a condition on the day's progress; fail if the day ended first."""
        while not condition():
            if self.task.done():
                self.task.result()  # the day's own failure, if any
                raise AssertionError(f"the simulated day ended before {what}")
            await asyncio.sleep(0.1)

    async def traffic_started(self) -> None:
        await self.until(lambda: self.simulating, "its traffic started")


def day(
    stack: Stack,
    kafka: KafkaSettings,
    run_id: str,
    *,
    rate: float,
    duration_s: float,
    large: bool,
    seed: int = 7,
) -> Day:
    """A day of `rate` Kafka records + orders per second for `duration_s`: the large day's shape
    (mostly ad impressions and content stats, a few orders) or the normal one (more orders)."""
    config = SimConfig(
        seed=seed,
        rate=rate,
        unit="events",
        day=LARGE_DAY if large else NORMAL_DAY,
        duration_s=duration_s,
        run_id=run_id,
        targets=stack.targets,
        kafka=kafka,
        auth=AuthSettings(),
        # Calls are retried on UNAVAILABLE; a broker fault may hold one for a while.
        rpc_timeout_s=15.0,
        rpc_attempts=8,
        concurrency=32,
        drain_s=120.0,
        verify_s=120.0,
    )
    return Day(config, Telemetry(config=config, ledger=Ledger()))
