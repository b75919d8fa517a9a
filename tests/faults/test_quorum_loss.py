"""Scenario 2.2: two of the three brokers killed while the simulated day runs. With one broker
left no partition has the two in-sync replicas min.insync.replicas asks for (and the controller
has no quorum), so producers must get errors and acknowledge nothing: a probe producer's records
all fail, and no outbox row written during the outage leaves its outbox (a relay deletes a row
only once Kafka acknowledged it). gRPC mutations either fail with UNAVAILABLE (never INTERNAL or
UNKNOWN) or are accepted into the outbox; after the brokers return every accepted change is
published and the recount matches."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import pytest
from faults_cluster import NODES, Cluster
from faults_oracle import judge
from faults_stack import OUTBOX_SERVICES, Stack
from faults_traffic import day

from shopstream.platform.v1 import heartbeat_pb2
from shopstream_platform.kafka.producer import EventProducer

pytestmark = [
    pytest.mark.faults,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.timeout(1_200),
]
PROBES = 20
# Codes that would mean a broker outage surfaced as a bug.
FORBIDDEN_CODES = {"INTERNAL", "UNKNOWN"}
# The outage lasts until these were seen, or at most this long.
NEW_OUTBOX_ROWS = 10
MAX_OUTAGE_S = 90.0


class Probe:
    """A producer that sends PROBES records while the brokers are down and counts its
    delivery reports (acknowledged or failed)."""

    def __init__(self, cluster: Cluster) -> None:
        # 10 s: long enough for a request to reach the broker, short enough to see the failures.
        self.producer = EventProducer(
            cluster.settings(delivery_timeout_ms=10_000), "shopstream/faults-probe"
        )
        self.acked = 0
        self.failed: list[str] = []
        self._lock = threading.Lock()

    def _report(self, err: object, _msg: object) -> None:
        with self._lock:
            if err is None:
                self.acked += 1
            else:
                self.failed.append(str(err))

    def send(self) -> None:
        key = f"faults-probe-{uuid.uuid4().hex[:8]}"
        for n in range(PROBES):
            beat = heartbeat_pb2.Heartbeat(service="faults-probe", instance_id=key, sequence=n)
            self.producer.publish("platform.heartbeats.v1", key, beat, on_delivery=self._report)

    @property
    def reported(self) -> int:
        with self._lock:
            return self.acked + len(self.failed)


async def test_two_brokers_down_acknowledge_nothing_and_lose_nothing(
    cluster: Cluster, stack: Stack
) -> None:
    await stack.all_serving()
    assert await asyncio.to_thread(cluster.in_sync), "the cluster is not whole at the start"
    since = time.monotonic()
    logs = stack.log_mark()
    # A normal day: about one order in eight events, so mutations arrive all through the outage.
    traffic = day(
        stack, cluster.settings(), f"f22{stack.tag}", rate=40, duration_s=75, large=False, seed=22
    )
    traffic.start()
    await traffic.until(
        lambda: traffic.ledger.events() >= traffic.planned_events * 0.25, "a quarter of the day"
    )

    before = {n: stack.services[n].outbox_ce_ids() for n in OUTBOX_SERVICES}
    down = [n for n in NODES if n != 1]
    for node in down:
        await asyncio.to_thread(cluster.kill, node)
    downed_at = time.monotonic()
    events_at_kill = traffic.ledger.events()
    probe = Probe(cluster)
    probe.send()

    # Every outbox row written while the brokers are down, as the outage goes on.
    written: dict[str, set[str]] = {n: set() for n in OUTBOX_SERVICES}

    def outage_seen_enough() -> bool:
        for n in OUTBOX_SERVICES:
            written[n] |= stack.services[n].outbox_ce_ids() - before[n]
        new_rows = sum(len(w) for w in written.values())
        return probe.reported == PROBES and new_rows >= NEW_OUTBOX_ROWS

    while not outage_seen_enough():
        if time.monotonic() - downed_at > MAX_OUTAGE_S:
            break  # the asserts below say what was not seen
        await asyncio.sleep(0.5)
    still_there = {n: stack.services[n].outbox_ce_ids() for n in OUTBOX_SERVICES}
    # Acknowledged during the outage = a row written during it that its relay deleted.
    left_early = {n: len(written[n] - still_there[n]) for n in OUTBOX_SERVICES}
    held_s = time.monotonic() - downed_at
    for node in down:
        await asyncio.to_thread(cluster.start_node, node)
    up_s = time.monotonic() - downed_at
    in_sync_s = await asyncio.to_thread(cluster.wait_in_sync)
    probe.producer.close(5)
    summary = await traffic.task

    codes = {
        key.split(" ")[1]
        for key in summary.rpc_errors
        if " " in key and key.split(" ")[0] != "journey"
    }
    injected = [
        f"kill -9 nodes {down} at {events_at_kill:,} events (node 1 alone: no ISR of 2, no controller quorum); "
        f"held {held_s:.1f} s, both back after {up_s:.1f} s, every replica in sync {in_sync_s:.1f} s later",
        f"probe producer: {PROBES} records sent while down, {probe.acked} acknowledged, {len(probe.failed)} failed "
        f"({sorted(set(probe.failed))[:2]})",
        f"outbox rows written while down: { {n: len(w) for n, w in written.items()} }, "
        f"acknowledged (deleted) before the brokers returned: {left_early}",
        f"gRPC errors the simulator saw: {summary.rpc_errors or 'none'}",
    ]
    verdict = await judge(
        "2.2 two of three brokers down",
        injected,
        kafka=cluster.settings(),
        auth=traffic.config.auth,
        stack=stack,
        summary=summary,
        telemetry=traffic.telemetry,
        since_monotonic=since,
        # The outage may outlast the producers' delivery timeout: see judge().
        exactly_once_edge=False,
    )
    verdict.notes += stack.log_findings(logs)
    print("\n" + verdict.show(), flush=True)

    assert probe.reported == PROBES and probe.acked == 0, (probe.acked, probe.failed)
    assert sum(len(w) for w in written.values()) >= NEW_OUTBOX_ROWS, (
        "no mutations reached the outage"
    )
    assert sum(left_early.values()) == 0, left_early
    assert not codes & FORBIDDEN_CODES, summary.rpc_errors
    assert verdict.compared > 0 and verdict.unanswered == []
    assert verdict.lost_total == 0, verdict.lost
    assert verdict.duplicated_total == 0, verdict.duplicated
    assert verdict.mismatched == [], verdict.mismatched
