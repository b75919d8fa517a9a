"""Scenario 2.5: SIGTERM to commerce (the service every order goes through) while the simulated
day runs against it. A health Watch opened before the signal must see NOT_SERVING at once; calls
in flight when the signal arrives finish with their answer (only calls the server never took
may fail, with UNAVAILABLE, and the simulator retries those); the process exits 0 having
committed its consumers' offsets, drained its outbox and flushed its producer; after a restart
nothing acknowledged is lost or doubled and the recount matches."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

import grpc
import pytest
from faults_cluster import Cluster
from faults_oracle import judge
from faults_stack import Service, Stack
from faults_traffic import day
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shopstream.commerce.v1 import commerce_service_pb2 as pb
from shopstream.commerce.v1 import commerce_service_pb2_grpc
from shopstream_platform.grpc.auth import TokenCodec
from shopstream_simulator.clients import ADMIN

pytestmark = [
    pytest.mark.faults,
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.timeout(900),
]
CALLERS = 16
# How a call may end while commerce stops: answered, or not run at all (refused by a server that
# stopped taking calls: UNAVAILABLE; or received by gRPC's core but not yet handed to the
# application when the shutdown began: CANCELLED, see docs/reliability.md).
ACCEPTABLE = {"OK", "UNAVAILABLE", "CANCELLED"}


@dataclass
class Call:
    started: float
    ended: float
    code: str
    details: str = ""


async def call_loop(
    service: Service, order_ids: list[str], token: str, stop: asyncio.Event, calls: list[Call]
) -> None:
    """GetOrder as fast as it answers, until `stop`; every call's times and status recorded."""
    metadata = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        stub = commerce_service_pb2_grpc.CommerceServiceStub(channel)
        n = 0
        while not stop.is_set():
            n += 1
            started = time.monotonic()
            try:
                await stub.GetOrder(
                    pb.GetOrderRequest(order_id=order_ids[n % len(order_ids)]),
                    metadata=metadata,
                    timeout=30,
                )
                code = "OK"
            except grpc.aio.AioRpcError as exc:
                code, details = exc.code().name, exc.details() or ""
            else:
                details = ""
            calls.append(Call(started, time.monotonic(), code, details))
            if code != "OK":
                await asyncio.sleep(0.05)  # the server is going: do not spin on refusals


async def watch_until_not_serving(service: Service, watching: asyncio.Event) -> float:
    """Watch commerce's health from before the signal; the monotonic time NOT_SERVING arrived."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{service.port}") as channel:
        stream = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        try:
            async for reply in stream:
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    watching.set()
                elif reply.status == health_pb2.HealthCheckResponse.NOT_SERVING:
                    return time.monotonic()
        finally:
            # An open Watch is an in-flight call too: it would hold the shutdown for its grace.
            stream.cancel()
    raise AssertionError("the health Watch ended without NOT_SERVING")


async def test_sigterm_under_load_drains_and_loses_nothing(cluster: Cluster, stack: Stack) -> None:
    await stack.all_serving()
    since = time.monotonic()
    logs = stack.log_mark()
    traffic = day(
        stack, cluster.settings(), f"f25{stack.tag}", rate=40, duration_s=50, large=False, seed=25
    )
    traffic.start()
    await traffic.until(
        lambda: (
            traffic.ledger.events() >= traffic.planned_events * 0.4
            and len(traffic.ledger.placed_order_ids) >= 5
        ),
        "40% of the day and a few orders",
    )
    token = TokenCodec(traffic.config.auth).mint(*ADMIN)
    orders = sorted(traffic.ledger.placed_order_ids)
    with stack.hands_off("commerce") as commerce:
        watching = asyncio.Event()
        watch = asyncio.create_task(watch_until_not_serving(commerce, watching))
        await asyncio.wait_for(watching.wait(), 30)
        stop, calls = asyncio.Event(), []
        callers = [
            asyncio.create_task(call_loop(commerce, orders, token, stop, calls))
            for _ in range(CALLERS)
        ]
        await traffic.until(
            lambda: len(calls) >= 5 * CALLERS, "the callers answered a few calls each"
        )
        signalled = time.monotonic()
        commerce.terminate()
        not_serving_at = await asyncio.wait_for(watch, 30)
        code = await asyncio.to_thread(commerce.process.wait, 90)
        exited_s = time.monotonic() - signalled
        stack.record_exit("commerce", code, expected=True)
        stop.set()
        await asyncio.gather(*callers)
        pending_after_exit, dead = commerce.outbox()
        restart_s = await commerce.start()
    summary = await traffic.task

    in_flight = [c for c in calls if c.started < signalled < c.ended]
    finished_in_flight = [c for c in in_flight if c.code == "OK"]
    not_run = Counter(f"{c.code} ({c.details[:60]})" for c in in_flight if c.code != "OK")
    codes = sorted({c.code for c in calls})
    injected = [
        f"SIGTERM to commerce at {traffic.ledger.events():,} events with {CALLERS} GetOrder callers and the "
        f"simulator's calls running: NOT_SERVING {1000 * (not_serving_at - signalled):.0f} ms after the signal, "
        f"exit code {code} after {exited_s:.1f} s, outbox rows left {pending_after_exit} (dead letters {dead}), "
        f"restarted and SERVING in {restart_s:.1f} s",
        f"probe calls: {len(calls)}, {len(in_flight)} in flight at the signal: {len(finished_in_flight)} answered OK, "
        f"the others {dict(not_run) or 'none'}; status codes seen {codes}",
        f"gRPC errors the simulator saw: {summary.rpc_errors or 'none'}",
    ]
    verdict = await judge(
        "2.5 SIGTERM under load",
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

    assert code == 0
    assert not_serving_at - signalled < 1.0, "health did not turn NOT_SERVING at once"
    assert pending_after_exit == 0 and dead == 0, "the outbox was not drained on SIGTERM"
    assert finished_in_flight, "no call was in flight at the signal: the case did not happen"
    assert set(codes) <= ACCEPTABLE, codes
    assert not {k for k in summary.rpc_errors if "INTERNAL" in k or "UNKNOWN" in k}, (
        summary.rpc_errors
    )
    assert verdict.compared > 0 and verdict.unanswered == []
    assert verdict.lost_total == 0, verdict.lost
    assert verdict.duplicated_total == 0, verdict.duplicated
    assert verdict.mismatched == [], verdict.mismatched
