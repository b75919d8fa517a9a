"""The life of a service process: wire, wait for dependencies, serve, and shut down gracefully.

Health stays NOT_SERVING until Kafka answers, topics exist and the database is migrated. On
SIGTERM or SIGINT: NOT_SERVING, finish in-flight RPCs, stop consumers (committing what they
handled), drain the outbox, flush the producer, exit 0. If a background loop dies, the process
exits non-zero so its supervisor restarts it rather than leaving a half-working instance up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message as ProtoMessage

from shopstream.platform.v1 import heartbeat_pb2
from shopstream_platform.child_process import ChildProcess
from shopstream_platform.db.database import Database
from shopstream_platform.db.inbox import SessionHandler, SqlInbox
from shopstream_platform.db.migrations import Migration, migrate
from shopstream_platform.db.outbox import Outbox, OutboxRelay
from shopstream_platform.db.tables import PLATFORM_MIGRATIONS
from shopstream_platform.gc_tuning import freeze_heap, tune_gc
from shopstream_platform.grpc.auth import AccessPolicy
from shopstream_platform.grpc.server import GrpcServer, ServiceBinding
from shopstream_platform.kafka.admin import ensure_topics, probe_kafka
from shopstream_platform.kafka.consumer import EventConsumer
from shopstream_platform.kafka.dlq import DeadLetterPublisher
from shopstream_platform.kafka.events import Handler
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.kafka.topics import load_registry
from shopstream_platform.logging import configure_logging
from shopstream_platform.metrics import ChildMetrics, PlatformMetrics, serve_metrics
from shopstream_platform.periodic import Step, periodic
from shopstream_platform.settings import ServiceSettings
from shopstream_platform.tracing import configure_from_settings, flush_tracing

log = logging.getLogger(__name__)

HEARTBEAT_TOPIC = "platform.heartbeats.v1"
Task = Callable[[], Coroutine[Any, Any, None]]


class Runtime:
    """Holds one service's plumbing; the service's wiring adds its servicers, consumers and tasks."""

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        policy: AccessPolicy | None = None,
        migrations: Sequence[Migration] = (),
        topics: Iterable[str] = (),
    ) -> None:
        self.settings = settings
        self.name = settings.service_name
        self.instance_id = f"{self.name}-{uuid.uuid4().hex[:8]}"
        self.metrics = PlatformMetrics(self.name)
        # Off unless SHOPSTREAM_TRACING__ENABLED: then every span of this process is exported.
        configure_from_settings(settings.tracing, self.name)
        self.db = Database(settings.database_url)
        self.outbox = Outbox(source=f"shopstream/{self.name}")
        self.producer = EventProducer(
            settings.kafka, f"shopstream/{self.name}", self.metrics, client_id=self.instance_id
        )
        self.dead_letters = DeadLetterPublisher(self.producer, self.metrics)
        self._policy = policy or AccessPolicy.of({})
        self._migrations = list(migrations)
        self._topics = {HEARTBEAT_TOPIC, *topics}
        self._bindings: list[ServiceBinding] = []
        self._consumers: list[EventConsumer] = []
        self._tasks: list[tuple[str, Task]] = []
        self._health_checks: list[tuple[str, Callable[[], str | None]]] = []
        self._gates: list[Task] = []
        self._relay = OutboxRelay(
            self.db,
            self.outbox,
            self.producer,
            self.metrics,
            batch=settings.outbox_batch,
            poll_interval_s=settings.outbox_poll_interval_s,
        )
        self._stop = asyncio.Event()
        self.grpc: GrpcServer | None = None
        self.metrics_port = 0
        self.started_at = datetime.now(UTC)
        self.ready = asyncio.Event()

    # --- wiring -------------------------------------------------------------------------------

    def add_grpc_service(
        self, full_name: str, register: Callable[[Any, Any], None], servicer: Any
    ) -> None:
        self._bindings.append(ServiceBinding(full_name, register, servicer))

    def add_consumer(
        self,
        group_suffix: str,
        topics: Iterable[str],
        routes: Mapping[type[ProtoMessage], Handler],
        *,
        transient: tuple[type[BaseException], ...] = (),
    ) -> EventConsumer:
        """A consumer group `<service>.<suffix>` over topics, each event type routed to a handler."""
        topics = list(topics)
        self._topics.update(topics)
        consumer = EventConsumer(
            kafka=self.settings.kafka,
            settings=self.settings.consumer,
            group_id=f"{self.name}.{group_suffix}",
            topics=topics,
            routes=routes,
            dead_letters=self.dead_letters,
            metrics=self.metrics,
            transient=transient,
            client_id=f"{self.instance_id}.{group_suffix}",
        )
        self._consumers.append(consumer)
        return consumer

    def inbox(self, group_suffix: str) -> SqlInbox:
        return SqlInbox(self.db, f"{self.name}.{group_suffix}")

    def deduplicated(
        self, group_suffix: str, routes: Mapping[type[ProtoMessage], SessionHandler]
    ) -> dict[type[ProtoMessage], Handler]:
        """Routes whose handlers run in a DB transaction together with the inbox dedup row."""
        inbox = self.inbox(group_suffix)
        return {t: inbox.handler(h) for t, h in routes.items()}

    def declare_topics(self, topics: Iterable[str]) -> None:
        """Registry topics this service publishes; created (with their DLQs) before serving."""
        self._topics.update(topics)

    def add_health_check(self, name: str, check: Callable[[], str | None]) -> None:
        """A check run every `health_check_interval_s` once serving: it returns why the service
        is unhealthy, or None. While any fails, health is NOT_SERVING (load balancers and
        `shopstream status` see it) and `shopstream_unhealthy{check}` is 1."""
        self._health_checks.append((name, check))

    def add_child_process(
        self, name: str, module: str, *, restart_backoff_s: float, metrics_port: int = 0
    ) -> None:
        """`python -m <module>` beside the service for as long as it runs (e.g. a stream worker's
        combiner), with the service's settings: restarted when it exits (counted in
        `shopstream_child_restarts_total`), a crash loop reported by health. `metrics_port`:
        where the child serves its own metrics, re-exposed on the service's /metrics."""
        if metrics_port:
            self.metrics.registry.register(
                ChildMetrics(f"http://{self.settings.metrics_host}:{metrics_port}/metrics")
            )
        child = ChildProcess(
            name,
            module,
            self.settings,
            restart_backoff_s=restart_backoff_s,
            on_restart=self.metrics.child_restarts.labels(self.name, name).inc,
        )
        self.add_task(name, child.run)
        self.add_health_check(name, child.health)

    def add_task(self, name: str, task: Task) -> None:
        """A background loop that runs while the service serves; it must return when cancelled.
        If it ends or raises, the service ends (exit code 1): a loop that runs a step every so
        often is `add_periodic`, whose failures are retried instead."""
        self._tasks.append((name, task))

    def add_periodic(
        self,
        name: str,
        step: Step,
        *,
        every_s: float,
        first_after_s: float = 0.0,
        transient: tuple[type[BaseException], ...] = (),
    ) -> None:
        """A background step run every `every_s` (the first after `first_after_s`) while the
        service serves. Its failures never end the service: a transient one (a locked SQLite
        file, a lost connection, a time-out, or a declared type) is retried with back-off, any
        other is logged and the step runs again next interval (periodic.py); both are counted in
        `shopstream_periodic_failures_total{task,kind}`."""
        failures = self.metrics.periodic_failures
        self.add_task(
            name,
            periodic(
                name,
                step,
                every_s=every_s,
                first_after_s=first_after_s,
                transient=transient,
                on_failure=lambda kind: failures.labels(self.name, name, kind).inc(),
            ),
        )

    def add_readiness_gate(self, gate: Task) -> None:
        """Awaited after the background tasks started and before health turns SERVING (e.g. Faust
        tables recovered from their changelogs)."""
        self._gates.append(gate)

    def stop(self) -> None:
        self._stop.set()

    # --- running ------------------------------------------------------------------------------

    async def serve(self, *, handle_signals: bool = True) -> int:
        """Run until SIGTERM/SIGINT or stop() (exit code 0), or a background failure (exit code 1).

        handle_signals=False lets a test host the service in its own event loop.
        """
        tune_gc(self.settings.gc_gen0_threshold)
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
        metrics_server = serve_metrics(
            self.metrics.registry, self.settings.metrics_host, self.settings.metrics_port
        )
        self.metrics_port = int(metrics_server.server_port)
        self.grpc = GrpcServer(
            self.settings.grpc, self.settings.auth, self.metrics, self._policy, self._bindings
        )
        await self.grpc.start()
        running: list[asyncio.Task[None]] = []
        exit_code = 0
        try:
            if not await self._prepare():
                return 0
            running = [
                asyncio.create_task(c.run(), name=f"consumer:{c.group_id}") for c in self._consumers
            ]
            running.append(asyncio.create_task(self._relay.run(), name="outbox-relay"))
            running.append(asyncio.create_task(self._heartbeat(), name="heartbeat"))
            running += [asyncio.create_task(t(), name=n) for n, t in self._tasks]
            for gate in self._gates:
                await self._until_stopped_or(gate(), running)
            if self._stop.is_set():
                return 0
            if self.settings.gc_gen0_threshold:
                freeze_heap()  # tables recovered, caches warm: out of the collector's way
            await self.grpc.set_serving(True)
            self.metrics.ready.labels(self.name).set(1)
            self.ready.set()
            log.info(
                "serving",
                extra={"grpc_port": self.grpc.port, "metrics_port": metrics_server.server_port},
            )
            running.append(asyncio.create_task(self._watch_health(), name="health"))
            stop_wait = asyncio.create_task(self._stop.wait())
            done, _ = await asyncio.wait([stop_wait, *running], return_when=asyncio.FIRST_COMPLETED)
            failed = [t for t in done if t is not stop_wait]
            for task in failed:
                exit_code = 1
                log.error(
                    "background task ended; shutting down",
                    extra={"task": task.get_name()},
                    exc_info=task.exception() if not task.cancelled() else None,
                )
            stop_wait.cancel()
        finally:
            await self._shutdown(running)
            metrics_server.shutdown()
        return exit_code

    async def _until_stopped_or(
        self, gate: Coroutine[Any, Any, None], running: list[asyncio.Task[None]]
    ) -> None:
        """Wait for a readiness gate, unless a stop or a failed background task comes first."""
        waiter = asyncio.create_task(gate)
        stop_wait = asyncio.create_task(self._stop.wait())
        await asyncio.wait([waiter, stop_wait, *running], return_when=asyncio.FIRST_COMPLETED)
        stop_wait.cancel()
        if not waiter.done():
            waiter.cancel()
            failed = [t for t in running if t.done()]
            if failed and not self._stop.is_set():
                failed[0].result()
            return
        waiter.result()

    async def _prepare(self) -> bool:
        """Wait for Kafka, create topics, migrate; False when asked to stop meanwhile."""
        kafka = self.settings.kafka
        registry = load_registry()
        # Short probes so a SIGTERM while Kafka is away is honoured within seconds.
        waited = 0
        while not await asyncio.to_thread(probe_kafka, kafka, 2.0):
            if waited % 10 == 0:
                log.warning("waiting for Kafka", extra={"bootstrap": kafka.bootstrap_servers})
            waited += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 1.0)
            if self._stop.is_set():
                return False
        specs = registry.with_dlqs(sorted(self._topics))
        await asyncio.to_thread(ensure_topics, kafka, specs)
        await migrate(self.db, "platform", PLATFORM_MIGRATIONS)
        if self._migrations:
            await migrate(self.db, self.name, self._migrations)
        return True

    async def _shutdown(self, running: list[asyncio.Task[None]]) -> None:
        log.info("shutting down")
        self.metrics.ready.labels(self.name).set(0)
        if self.grpc is not None:
            await self.grpc.stop()
        # Consumers first: the last records they handle may write outbox rows the relay must send.
        for consumer in self._consumers:
            consumer.stop()
        consumers = [t for t in running if t.get_name().startswith("consumer:")]
        if consumers:
            await asyncio.wait(consumers, timeout=30)
        self._relay.stop()
        relay = [t for t in running if t.get_name() == "outbox-relay"]
        if relay:
            await asyncio.wait(relay, timeout=30)
        for task in running:
            if not task.done():
                task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await asyncio.to_thread(self.producer.close, 30.0)
        await asyncio.to_thread(flush_tracing)
        await self.db.dispose()
        log.info("stopped")

    def _outbox_health(self) -> str | None:
        failing = self._relay.failing_for_s
        if failing > self.settings.outbox_unhealthy_after_s:
            return f"outbox delivery failing for {failing:.0f} s"
        return None

    async def _watch_health(self) -> None:
        """Flip SERVING / NOT_SERVING as the health checks fail and recover."""
        checks = [("outbox", self._outbox_health), *self._health_checks]
        healthy = True
        while True:
            await asyncio.sleep(self.settings.health_check_interval_s)
            reasons = {}
            for name, check in checks:
                reason = check()
                self.metrics.unhealthy.labels(self.name, name).set(1 if reason else 0)
                if reason:
                    reasons[name] = reason
            if bool(reasons) == (not healthy):
                continue
            healthy = not reasons
            if self.grpc is not None:
                await self.grpc.set_serving(healthy)
            self.metrics.ready.labels(self.name).set(1 if healthy else 0)
            if healthy:
                log.info("healthy again: serving")
            else:
                log.error("unhealthy: not serving", extra={"checks": reasons})

    async def _heartbeat(self) -> None:
        sequence = 0
        while True:
            sequence += 1
            beat = heartbeat_pb2.Heartbeat(
                service=self.name,
                instance_id=self.instance_id,
                sequence=sequence,
                serving=self.ready.is_set(),
            )
            beat.started_at.FromDatetime(self.started_at)
            beat.sent_at.FromDatetime(datetime.now(UTC))
            self.producer.publish(HEARTBEAT_TOPIC, self.instance_id, beat)
            await asyncio.sleep(self.settings.heartbeat_interval_s)


def run_service(
    settings: ServiceSettings, wire: Callable[[Runtime], object], **runtime_args: Any
) -> None:
    """Entry point body of every service: logging, wiring, serve, exit with the serve's code."""
    configure_logging(settings.service_name, settings.log_level, settings.log_format)

    async def main() -> int:
        runtime = Runtime(settings, **runtime_args)
        wire(runtime)
        return await runtime.serve()

    sys.exit(asyncio.run(main()))
