"""Scenario 2.1: kill -9 of the leader of the busiest partitions while the simulated day runs
through all four services on the 3-node cluster (RF 3, min ISR 2); each killed broker is
restarted once the controller has fenced it (the broker session timeout) and the next kill waits
until every replica is back in sync. Afterwards nothing acknowledged is lost, nothing counted
twice, and `shopstream reconcile` finds every number the services answer equal to its recount."""

from __future__ import annotations

import asyncio
import time

import pytest
from faults_cluster import Cluster, Kill
from faults_oracle import judge
from faults_stack import Stack
from faults_traffic import Day, day

pytestmark = [
    pytest.mark.faults,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.timeout(1_800),
]


async def kill_leaders(cluster: Cluster, traffic: Day, kills: int) -> list[tuple[Kill, bool, int]]:
    """`kills` leader kills spread over the day's planned events: each waits until its share of
    the traffic was acknowledged. Per kill: the fault, whether traffic was still flowing when
    it struck, and the events acknowledged by then."""
    await traffic.traffic_started()
    before = await asyncio.to_thread(cluster.end_offsets, cluster.partitions())
    done: list[tuple[Kill, bool, int]] = []
    for n in range(1, kills + 1):
        due = traffic.planned_events * n / (kills + 1)
        await traffic.until(lambda due=due: traffic.ledger.events() >= due, f"kill {n} was due")
        events = traffic.ledger.events()
        mid_stream = traffic.simulating
        fault = await asyncio.to_thread(cluster.kill_leader, before)
        done.append((fault, mid_stream, events))
        print(f"   kill {n}/{kills} at {events:,} events: {fault.describe()}", flush=True)
        before = await asyncio.to_thread(cluster.end_offsets, cluster.partitions())
    return done


async def test_leader_kills_under_load_lose_and_double_nothing(
    cluster: Cluster, stack: Stack, fault_volume
) -> None:
    await stack.all_serving()
    assert await asyncio.to_thread(cluster.in_sync), "the cluster is not whole at the start"
    since = time.monotonic()
    logs = stack.log_mark()
    traffic = day(
        stack,
        cluster.settings(),
        f"f21{stack.tag}",
        rate=fault_volume.rate,
        duration_s=fault_volume.duration_s,
        large=True,
    ).start()
    kills = await kill_leaders(cluster, traffic, fault_volume.kills)
    summary = await traffic.task
    assert not summary.interrupted

    injected = [
        f"{'mid-stream' if mid else 'AFTER the traffic'} at {events:,} events: {fault.describe()}"
        for fault, mid, events in kills
    ]
    verdict = await judge(
        f"2.1 leader kills ({'full' if fault_volume.full else 'short'})",
        injected,
        kafka=cluster.settings(),
        auth=traffic.config.auth,
        stack=stack,
        summary=summary,
        telemetry=traffic.telemetry,
        since_monotonic=since,
    )
    verdict.notes += stack.log_findings(logs)
    print("\n" + verdict.show(), flush=True)

    assert len(kills) == fault_volume.kills
    assert all(mid for _, mid, _ in kills), "a kill did not land while the traffic ran"
    if fault_volume.full:
        assert summary.events >= 100_000, summary.events
    assert verdict.compared > 0 and verdict.unanswered == []
    assert verdict.lost_total == 0, verdict.lost
    assert verdict.duplicated_total == 0, verdict.duplicated
    assert verdict.mismatched == [], verdict.mismatched
