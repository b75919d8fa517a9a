"""`simulate(config)`: connect, set up the world, play the plan in real time, drain, verify."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import grpc
from grpc import aio

from shopstream.catalog.v1 import catalog_service_pb2
from shopstream_platform.grpc.auth import TokenCodec
from shopstream_platform.kafka.admin import probe_kafka
from shopstream_simulator import social
from shopstream_simulator.clients import Rpc, Services, details_of
from shopstream_simulator.config import REQUIRED, SimConfig
from shopstream_simulator.context import Context
from shopstream_simulator.edge import Edge
from shopstream_simulator.journeys import run_session
from shopstream_simulator.ledger import Ledger, Summary, fraud_dict
from shopstream_simulator.monitor import Monitor, Telemetry
from shopstream_simulator.plan import (
    Action,
    BotBurst,
    BuyerSession,
    ContentReport,
    CounterfeitListing,
    LiveEnd,
    LiveStart,
    LiveTick,
    Plan,
    ProfileUpdate,
    StatsTick,
)
from shopstream_simulator.provision import plant_counterfeit, provision
from shopstream_simulator.ratelimit import Limiter, TokenBucket, Unlimited
from shopstream_simulator.verify import (
    all_caught,
    check,
    reconcile,
    storage_fees,
    watch_late_shipper,
)
from shopstream_simulator.world import build_world

log = logging.getLogger(__name__)

# A view runs beside the simulation with the telemetry and is cancelled at the end.
View = Callable[[Telemetry], Coroutine[Any, Any, None]]
STOP_GRACE_S = 10.0


class ServicesUnreachable(RuntimeError):
    """A service the simulation needs did not answer; the message says which and where."""


async def simulate(
    config: SimConfig,
    *,
    view: View | None = None,
    stop: asyncio.Event | None = None,
    telemetry: Telemetry | None = None,
) -> Summary:
    """Run one simulated day against the stack and return its ledger. `stop` ends it early
    (cleanly: journeys finish their current step, the summary is still complete)."""
    stop = stop or asyncio.Event()
    ledger = Ledger()
    telemetry = telemetry or Telemetry(config=config, ledger=ledger)
    telemetry.ledger = ledger
    codec = TokenCodec(config.auth)
    services = Services.connect(config.targets.grpc)
    started_at = datetime.now(UTC)
    view_task: asyncio.Task[None] | None = None
    monitor_task: asyncio.Task[None] | None = None
    watch_task: asyncio.Task[None] | None = None
    try:
        if view is not None:
            view_task = asyncio.create_task(view(telemetry))
        await _connect(config, services, telemetry)
        run_id = config.run_id or await _free_run_id(config, services)
        telemetry.run_id = run_id
        world = build_world(config.seed, run_id, config.world, config.currency, config.country)
        plan = Plan.for_rate(world, config.duration_s, config.rate, config.unit, config.day)
        telemetry.expected_orders = plan.expected_orders
        rpc = Rpc(
            codec,
            ledger,
            concurrency=config.concurrency,
            timeout_s=config.rpc_timeout_s,
            attempts=config.rpc_attempts,
        )
        orders_limit, events_limit = _limits(config)
        edge = Edge(config.kafka, run_id, ledger, Unlimited())
        ctx = Context(config, world, plan, ledger, rpc, services, edge, orders_limit)
        monitor = Monitor(config, services, codec, telemetry)
        await monitor.baseline()
        telemetry.context = ctx
        monitor_task = asyncio.create_task(monitor.run())
        interrupted = False
        try:
            telemetry.phase = "setting up the world"
            await _until_stopped(provision(ctx, telemetry.progress), stop)
            if stop.is_set():
                interrupted = True
            else:
                telemetry.phase = "simulating"
                edge.limit(events_limit)
                watch_task = asyncio.create_task(watch_late_shipper(ctx))
                interrupted = await _play(ctx, telemetry, stop)
        finally:
            telemetry.phase = "closing live sessions"
            for key in sorted(ctx.lives_open):
                try:
                    await social.end_live(ctx, key)
                except aio.AioRpcError as exc:
                    ledger.warn(f"live {key} not ended: {details_of(exc)}")
            telemetry.phase = "flushing Kafka"
            undelivered = await edge.close()
            if undelivered:
                ledger.warn(f"{undelivered} records were never acknowledged by Kafka")
        telemetry.phase = "checking what the services caught"
        monitor_task.cancel()
        caught = await _verify(ctx, monitor, telemetry, config.verify_s if not interrupted else 5.0)
        await storage_fees(ctx)
        telemetry.phase = "done"
        finished = datetime.now(UTC)
        return Summary(
            day=config.day.name,
            events=ledger.events(),
            wall_s=round((finished - started_at).total_seconds(), 1),
            consumer_lag=telemetry.snapshot.lag_summary(),
            reconciled=telemetry.reconciled,
            run_id=run_id,
            seed=config.seed,
            rate=config.rate,
            unit=config.unit,
            duration_s=config.duration_s,
            elapsed_s=round(ctx.elapsed(), 3),
            started_at=started_at.isoformat(),
            finished_at=finished.isoformat(),
            interrupted=interrupted,
            services=dict(services.available),
            orders=dict(sorted(ledger.orders.items())),
            rejections=dict(sorted(ledger.rejections.items())),
            money=ledger.money(),
            traffic=dict(sorted(ledger.traffic.items())),
            fulfilment=dict(sorted(ledger.fulfilment.items())),
            fraud=fraud_dict(ledger.fraud),
            caught=caught,
            observed=telemetry.snapshot.observed(),
            rpc_errors=dict(sorted(ledger.rpc_errors.items())),
            warnings=list(ledger.warnings),
        )
    finally:
        for task in (watch_task, monitor_task, view_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await services.close()


def _limits(config: SimConfig) -> tuple[Limiter, Limiter]:
    """The configured rate bounds orders (unit orders) or every record and order (unit events);
    a burst of up to one second's worth passes at once."""
    bucket = TokenBucket(config.rate, max(1.0, config.rate))
    if config.unit == "orders":
        return bucket, Unlimited()
    return bucket, bucket


async def _connect(config: SimConfig, services: Services, telemetry: Telemetry) -> None:
    telemetry.phase = "connecting"
    states = await services.probe(wait_s=config.connect_wait_s)
    telemetry.services = dict(states)
    down = [s for s in REQUIRED if states.get(s) != "SERVING"]
    if down:
        where = ", ".join(f"{s} at {config.targets.grpc[s]} ({states.get(s)})" for s in down)
        raise ServicesUnreachable(
            f"cannot simulate without {where}; start the stack with `shopstream up` "
            "or point --target at it"
        )
    brokers = await asyncio.to_thread(probe_kafka, config.kafka, 3.0)
    telemetry.services["kafka"] = "UP" if brokers else "UNREACHABLE"
    if not brokers:
        raise ServicesUnreachable(
            f"Kafka at {config.kafka.bootstrap_servers} does not answer; "
            "start it with `deploy/kafka/kafka.sh start` or pass --target kafka=HOST:PORT"
        )
    for optional in ("ads", "creator-score"):
        if states.get(optional) != "SERVING":
            telemetry.ledger.warn(
                f"{optional} at {config.targets.grpc[optional]} is {states.get(optional)}: "
                "continuing without it"
            )


async def _free_run_id(config: SimConfig, services: Services) -> str:
    """`s<seed>` unless that world exists in this stack already; then `s<seed>-2`, `-3`, …"""
    rpc = Rpc(
        TokenCodec(config.auth), Ledger(), concurrency=1, timeout_s=config.rpc_timeout_s, attempts=3
    )
    base = config.default_run_id
    for n in range(1, 1_000):
        candidate = base if n == 1 else f"{base}-{n}"
        try:
            await rpc(
                services.catalog.GetSeller,
                catalog_service_pb2.GetSellerRequest(seller_id=f"{candidate}-seller-001"),
            )
        except aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                return candidate
            raise
    raise RuntimeError(f"no free run id left for seed {config.seed}; pass --run-id")


async def _until_stopped(work: Awaitable[None], stop: asyncio.Event) -> None:
    task = asyncio.ensure_future(work)
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    else:
        task.result()


async def _play(ctx: Context, telemetry: Telemetry, stop: asyncio.Event) -> bool:
    """Play the plan in real time; returns True when stopped early."""
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()
    slots = asyncio.Semaphore(ctx.config.max_journeys)
    ctx.traffic_started = time.monotonic()
    # Plan time 0 is now: videos and shows are stamped relative to the start of traffic.
    ctx.wall_started = datetime.now(UTC)
    start = loop.time()
    interrupted = False

    def finished(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        slots.release()
        telemetry.journeys = len(tasks)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            ctx.ledger.rpc_errors[f"journey {type(exc).__name__}"] += 1
            ctx.ledger.warn(f"a journey failed: {_describe(exc)}")

    for action in ctx.plan.actions():
        delay = start + action.at - loop.time()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
        if stop.is_set():
            interrupted = True
            break
        await slots.acquire()
        task = asyncio.create_task(_dispatch(ctx, action))
        tasks.add(task)
        telemetry.journeys = len(tasks)
        task.add_done_callback(finished)

    if not interrupted:
        telemetry.phase = "letting open orders finish"
        await _drain(tasks, ctx.config.drain_s, stop)
        interrupted = stop.is_set()
    ctx.stopping.set()
    telemetry.phase = "stopping"
    await _drain(tasks, STOP_GRACE_S, None)
    for task in list(tasks):
        task.cancel()
    if tasks:
        ctx.ledger.warn(f"{len(tasks)} journeys were cut off at the end")
        await asyncio.gather(*tasks, return_exceptions=True)
    return interrupted


async def _drain(
    tasks: set[asyncio.Task[None]], seconds: float, stop: asyncio.Event | None
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while tasks and loop.time() < deadline and not (stop is not None and stop.is_set()):
        await asyncio.wait(set(tasks), timeout=min(0.5, max(0.0, deadline - loop.time())))


def _describe(exc: BaseException | None) -> str:
    if isinstance(exc, aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return repr(exc)


async def _dispatch(ctx: Context, action: Action) -> None:
    match action:
        case BuyerSession():
            await run_session(ctx, action)
        case ContentReport():
            await social.content_report(ctx, action)
        case StatsTick():
            await social.stats_tick(ctx, action)
        case ProfileUpdate():
            await social.profile_update(ctx, action)
        case LiveStart():
            await social.live_start(ctx, action)
        case LiveTick():
            await social.live_tick(ctx, action)
        case LiveEnd():
            await social.live_end(ctx, action)
        case CounterfeitListing():
            await plant_counterfeit(ctx, ctx.world.product(action.product_key))
        case BotBurst():
            await social.bot_burst(ctx, action)


async def _verify(
    ctx: Context, monitor: Monitor, telemetry: Telemetry, seconds: float
) -> dict[str, Any]:
    """Wait (up to `seconds`) until every fraudster shows as caught; report what was seen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        await monitor.refresh()
        verdicts = await check(ctx, telemetry.snapshot)
        telemetry.verdicts = verdicts
        # The services may still be applying the last records: wait for their counts too.
        telemetry.reconciled = await reconcile(ctx, telemetry.snapshot)
        if (all_caught(verdicts) and telemetry.reconciled["exact"]) or loop.time() >= deadline:
            return verdicts
        await asyncio.sleep(2.0)
