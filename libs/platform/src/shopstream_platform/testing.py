"""pytest fixtures shared by every package: the real broker, fresh topics, SQLite and PostgreSQL.

Loaded as a pytest plugin (entry point `pytest11`). Integration fixtures never mock: when the
broker or database is not there, the tests that need it fail, they do not skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from shopstream_platform.db.database import Database
from shopstream_platform.db.migrations import migrate
from shopstream_platform.db.tables import PLATFORM_MIGRATIONS, outbox
from shopstream_platform.kafka.admin import ensure_topics
from shopstream_platform.kafka.topics import TopicSpec
from shopstream_platform.settings import KafkaSettings

KAFKA_ENV = "SHOPSTREAM_TEST_KAFKA"
CLUSTER_ENV = "SHOPSTREAM_TEST_KAFKA_CLUSTER"
PG_ENV = "SHOPSTREAM_TEST_PG_URL"


def scratch_topic_spec(name: str, partitions: int = 1) -> TopicSpec:
    return TopicSpec(
        name=name,
        key="test key",
        values=(),
        partitions=partitions,
        retention_ms=3_600_000,
        cleanup_policy="delete",
        owner="tests",
        description="created by a test",
    )


@pytest.fixture
def kafka_settings() -> KafkaSettings:
    """The single dev node started by `make kafka-up` (or SHOPSTREAM_TEST_KAFKA)."""
    return KafkaSettings(
        bootstrap_servers=os.environ.get(KAFKA_ENV, "127.0.0.1:9092"),
        delivery_timeout_ms=30_000,
        connect_timeout_s=20,
    )


@pytest.fixture
def cluster_settings() -> KafkaSettings:
    """The 3-node cluster started by `make kafka-cluster-up`, with production topic settings."""
    return KafkaSettings(
        bootstrap_servers=os.environ.get(
            CLUSTER_ENV, "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094"
        ),
        replication_factor=3,
        min_insync_replicas=2,
        delivery_timeout_ms=30_000,
        connect_timeout_s=20,
    )


@pytest.fixture
def new_topic(kafka_settings: KafkaSettings) -> Callable[..., str]:
    """Create a uniquely named topic (and its .dlq twin); returns its name."""

    def create(prefix: str = "test", partitions: int = 1) -> str:
        name = f"{prefix}.{uuid.uuid4().hex[:10]}.v1"
        spec = scratch_topic_spec(name, partitions)
        ensure_topics(kafka_settings, [spec, spec.dlq])
        return name

    return create


def read_all(
    kafka: KafkaSettings,
    topic: str,
    *,
    expect: int,
    timeout_s: float = 20.0,
    match: Callable[[Message], bool] | None = None,
    since_ms: int | None = None,
) -> list[Message]:
    """Read a topic from the start (or from the first record at or after `since_ms`: the shared
    test broker's topics hold millions of older records) with a plain confluent-kafka consumer
    until `expect` records (those for which `match` holds, when given) arrived or the timeout
    passed."""
    import time

    consumer = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    if since_ms is None:
        consumer.subscribe([topic])
    else:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        # The ends first: a record appended after this (so after `since_ms`) is read even when it
        # lands before the assignment (OFFSET_END would skip it).
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
        starts = consumer.offsets_for_times(
            [TopicPartition(topic, p, since_ms) for p in partitions], timeout=10
        )
        # No record at or after the time yet: from the end read before, for those to come.
        consumer.assign(
            [
                TopicPartition(
                    topic, tp.partition, tp.offset if tp.offset >= 0 else max(ends[tp.partition], 0)
                )
                for tp in starts
            ]
        )
    records: list[Message] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(records) < expect and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None and (match is None or match(msg)):
                records.append(msg)
    finally:
        consumer.close()
    return records


def read_since(kafka: KafkaSettings, topic: str, since_ms: int) -> list[Message]:
    """Every record of the topic from `since_ms` to its current end (the shared broker's topics
    hold millions of older records, too many to read from the start)."""
    consumer = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] or 0
            for p in partitions
        }
        starts = consumer.offsets_for_times(
            [TopicPartition(topic, p, since_ms) for p in partitions], timeout=10
        )
        todo = [tp for tp in starts if 0 <= tp.offset < ends[tp.partition]]
        consumer.assign(todo)
        remaining = {tp.partition for tp in todo}
        records: list[Message] = []
        deadline = time.monotonic() + 60
        while remaining and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            records.append(message)
            partition, offset = message.partition() or 0, message.offset() or 0
            if offset >= ends[partition] - 1:
                remaining.discard(partition)
        assert not remaining, f"{topic}: partitions {remaining} not read to their end"
        return records
    finally:
        consumer.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def database(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Database]:
    """A migrated, empty database: SQLite in a temp folder, and PostgreSQL when the test is
    marked `integration` (a fresh database per test on the server from `make postgres-up`)."""
    if request.param == "sqlite":
        db = Database(f"sqlite+aiosqlite:///{tmp_path}/test.db")
        await migrate(db, "platform", PLATFORM_MIGRATIONS)
        yield db
        await db.dispose()
        return
    if request.node.get_closest_marker("integration") is None:
        pytest.skip("PostgreSQL runs with the integration tests")
    url = os.environ.get(PG_ENV, "postgresql+asyncpg://postgres@127.0.0.1:5433/postgres")
    async with _fresh_pg_database(url) as db_url:
        db = Database(db_url)
        await migrate(db, "platform", PLATFORM_MIGRATIONS)
        yield db
        await db.dispose()


class _fresh_pg_database:
    """CREATE DATABASE test_<uuid> on enter, DROP on exit."""

    def __init__(self, admin_url: str) -> None:
        from sqlalchemy.engine import make_url

        self._admin = make_url(admin_url)
        self._name = f"test_{uuid.uuid4().hex[:12]}"

    async def _execute(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(
            host=self._admin.host,
            port=self._admin.port,
            user=self._admin.username,
            password=self._admin.password,
            database=self._admin.database,
        )
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def __aenter__(self) -> str:
        await self._execute(f'CREATE DATABASE "{self._name}"')
        return self._admin.set(database=self._name).render_as_string(hide_password=False)

    async def __aexit__(self, *exc: object) -> None:
        await self._execute(f'DROP DATABASE IF EXISTS "{self._name}" WITH (FORCE)')


@pytest.fixture
def unique_id() -> Iterator[Callable[[str], str]]:
    yield lambda prefix: f"{prefix}-{uuid.uuid4().hex[:8]}"


def start_group_at_end(kafka: KafkaSettings, group_id: str, topics: Iterable[str]) -> None:
    """Commit a new consumer group's offsets at the current end of each existing topic, so a
    worker started under that group reads only what comes after (topics outlive test runs).
    On a freshly started broker the commit waits for the group coordinator
    (commit_group_offsets)."""
    start_groups_at_end(kafka, {group_id: topics})


def start_groups_at_end(kafka: KafkaSettings, groups: Mapping[str, Iterable[str]]) -> None:
    """start_group_at_end for several groups at once: one metadata and one offsets request for
    all their topics, then every group's commit in flight together (a service's five groups took
    2-3 s one by one, a consumer and a round trip per partition each)."""
    from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

    admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
    metadata = admin.list_topics(timeout=10).topics
    # Topics created later by the service have nothing to skip.
    wanted = {
        group: [
            TopicPartition(topic, partition)
            for topic in dict.fromkeys(topics)
            if topic in metadata
            for partition in metadata[topic].partitions
        ]
        for group, topics in groups.items()
    }
    partitions = {(tp.topic, tp.partition) for tps in wanted.values() for tp in tps}
    if not partitions:
        return
    ends = {
        (tp.topic, tp.partition): future.result().offset
        for tp, future in admin.list_offsets(
            {TopicPartition(t, p): OffsetSpec.latest() for t, p in partitions},  # type: ignore[no-untyped-call]
            request_timeout=10,
        ).items()
    }
    commit_group_offsets(
        admin,
        {
            group: [
                TopicPartition(tp.topic, tp.partition, ends[tp.topic, tp.partition]) for tp in tps
            ]
            for group, tps in wanted.items()
            if tps
        },
    )


# What a group commit answers while the broker has no group coordinator yet: on a freshly started
# broker __consumer_offsets is created on the first group request (COORDINATOR_NOT_AVAILABLE
# until it is), then its partitions are elected and loaded (NOT_COORDINATOR,
# COORDINATOR_LOAD_IN_PROGRESS). Each passes by itself within seconds.
COORDINATOR_NOT_READY = frozenset(
    {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
    }
)


class CoordinatorNotReadyError(RuntimeError):
    """The group coordinator still refused the commits when the wait ran out."""


def commit_group_offsets(
    admin: Any,  # confluent_kafka's AdminClient, which has no type hints
    offsets: Mapping[str, list[TopicPartition]],
    timeout_s: float = 60.0,
) -> None:
    """Commit each group's offsets (all in flight together) through `admin` (an AdminClient);
    the groups whose coordinator is not ready are asked again every 0.5 s until `timeout_s`,
    then CoordinatorNotReadyError names them. Any other error fails at once."""
    from confluent_kafka import ConsumerGroupTopicPartitions

    pending = dict(offsets)
    deadline = time.monotonic() + timeout_s
    while True:
        futures = {
            group: future
            for group, tps in pending.items()
            for future in admin.alter_consumer_group_offsets(
                [ConsumerGroupTopicPartitions(group, tps)], request_timeout=10
            ).values()
        }
        not_ready: dict[str, str] = {}
        for group, future in futures.items():
            try:
                result = future.result()
            except KafkaException as exc:
                error = exc.args[0]
                if not (isinstance(error, KafkaError) and error.code() in COORDINATOR_NOT_READY):
                    raise
                not_ready[group] = error.name()
                continue
            failed = [tp for tp in result.topic_partitions if tp.error is not None]
            if failed and all(tp.error.code() in COORDINATOR_NOT_READY for tp in failed):
                not_ready[group] = failed[0].error.name()
                continue
            assert not failed, f"{result.group_id}: offsets not committed: {failed}"
        if not not_ready:
            return
        if time.monotonic() >= deadline:
            raise CoordinatorNotReadyError(
                f"no group coordinator answered within {timeout_s:.0f} s; offsets not committed:"
                f" {not_ready}"
            )
        pending = {group: pending[group] for group in not_ready}
        time.sleep(0.5)


async def read_all_async(
    kafka: KafkaSettings,
    topic: str,
    *,
    expect: int,
    timeout_s: float = 20.0,
    match: Callable[[Message], bool] | None = None,
    since_ms: int | None = None,
) -> list[Message]:
    """read_all in a worker thread, for tests whose service under test shares their event loop."""
    import asyncio

    return await asyncio.to_thread(
        read_all,
        kafka,
        topic,
        expect=expect,
        timeout_s=timeout_s,
        match=match,
        since_ms=since_ms,
    )


@dataclass
class HostedService:
    """A service running inside the test's event loop: real gRPC port, real Kafka, real DB."""

    runtime: Any
    wired: Any
    port: int

    def metric(self, name: str, labels: dict[str, str]) -> float:
        return float(self.runtime.metrics.registry.get_sample_value(name, labels) or 0.0)

    async def published(self, timeout_s: float = 30.0) -> None:
        """Wait until every committed outbox row is acknowledged by the broker (the relay
        deletes a row only then), so a test reading a topic sees what the last call wrote."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            async with self.runtime.db.read() as session:
                pending = (
                    await session.execute(sa.select(sa.func.count()).select_from(outbox))
                ).scalar_one()
            if not pending:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{pending} outbox rows still unpublished after {timeout_s}s")
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def hosted_service(
    settings: Any, wire: Callable[[Any], Any], **runtime_args: Any
) -> AsyncIterator[HostedService]:
    """Start a service's runtime in this event loop, wait for SERVING, stop it (exit 0) after."""
    import asyncio

    from shopstream_platform.runtime import Runtime

    runtime = Runtime(settings, **runtime_args)
    wired = wire(runtime)
    task = asyncio.create_task(runtime.serve(handle_signals=False))
    ready = asyncio.create_task(runtime.ready.wait())
    await asyncio.wait([task, ready], timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # surface the start-up failure
    if not runtime.ready.is_set() or runtime.grpc is None:
        ready.cancel()
        runtime.stop()
        raise RuntimeError(f"{settings.service_name} did not become ready within 60 s")
    try:
        yield HostedService(runtime, wired, runtime.grpc.port)
    finally:
        runtime.stop()
        assert await asyncio.wait_for(task, 60) == 0


def fast_test_settings(kafka: KafkaSettings) -> dict[str, Any]:
    """Settings overrides that make a hosted service react quickly in tests."""
    from shopstream_platform.settings import ConsumerSettings, GrpcSettings

    return {
        "kafka": kafka,
        "grpc": GrpcSettings(port=0, shutdown_grace_s=1),
        "consumer": ConsumerSettings(poll_timeout_s=0.05, auto_commit_interval_ms=200),
        "metrics_port": 0,
        "outbox_poll_interval_s": 0.02,
    }


def free_port() -> int:
    """A TCP port free on loopback right now."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServiceProcess:
    """A service run as a real process (`python -m module`), for tests that kill -9 it."""

    def __init__(self, module: str, env_prefix: str, settings: dict[str, str]) -> None:
        self.module = module
        self.port = free_port()
        self.env = {
            **os.environ,
            f"{env_prefix}GRPC__PORT": str(self.port),
            f"{env_prefix}METRICS_PORT": "0",
            f"{env_prefix}LOG_LEVEL": "WARNING",
            **{env_prefix + key: value for key, value in settings.items()},
        }
        self.process: Any = None

    async def start(self, timeout_s: float = 120.0) -> None:
        """Start and wait for SERVING; like a supervisor, start again if the process exits
        (a service exits non-zero on a fatal Kafka client error rather than limp on)."""
        import asyncio
        import subprocess
        import sys
        import time

        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        for _attempt in range(3):
            # Popen returns at once; the loop is not blocked while the child runs.
            self.process = subprocess.Popen([sys.executable, "-m", self.module], env=self.env)  # noqa: ASYNC220
            deadline = time.monotonic() + timeout_s
            async with grpc.aio.insecure_channel(f"127.0.0.1:{self.port}") as channel:
                stub = health_pb2_grpc.HealthStub(channel)
                while time.monotonic() < deadline and self.process.poll() is None:
                    try:
                        reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                        if reply.status == health_pb2.HealthCheckResponse.SERVING:
                            return
                    except grpc.aio.AioRpcError:
                        pass
                    await asyncio.sleep(0.1)
            if self.process.poll() is None:
                break
        raise AssertionError(f"{self.module} did not become SERVING")

    def kill(self) -> None:
        """SIGKILL: no shutdown work at all."""
        import signal

        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> int:
        """SIGTERM and the exit code."""
        import signal

        self.process.send_signal(signal.SIGTERM)
        return int(self.process.wait(60))

    def cleanup(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def service_process() -> Iterator[Callable[[str, str, dict[str, str]], ServiceProcess]]:
    """Factory of ServiceProcess; none is left running after the test, whatever its outcome."""
    started: list[ServiceProcess] = []

    def make(module: str, env_prefix: str, settings: dict[str, str]) -> ServiceProcess:
        process = ServiceProcess(module, env_prefix, settings)
        started.append(process)
        return process

    yield make
    for process in started:
        process.cleanup()


# --- running integration tests in parallel (pytest-xdist, `--dist loadgroup`) -----------------

# Every ads or creator-score instance reads its internal topics whole, whatever its app id (a
# worker applies every combiner's batches on ads.input-batches.v1 / creators.input-batches.v1),
# so two tests running either service at once count each other's inputs (a test asserting one
# click counted saw two). Those tests form one group: one worker runs them one after another.
STREAM_SERVICES_GROUP = "stream-services"
STREAM_SERVICE_TESTS = (
    "services/ads/",
    "services/creator-score/",
    "tools/cli/tests/integration/test_reconcile_ads.py",
    "tools/cli/tests/integration/test_reconcile_creators.py",
)
_STREAM_SERVICE_MODULES = (
    "ads_steps",
    "creator_steps",
    "shopstream_ads",
    "shopstream_creator_score",
)


def work_unit(nodeid: str) -> str:
    """The xdist work unit of a test: the stream-service group, or else its file (a file's tests
    share module-level helpers and, in places, state such as an uninterrupted twin)."""
    path = nodeid.split("::")[0]
    return STREAM_SERVICES_GROUP if path.startswith(STREAM_SERVICE_TESTS) else path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadgroup` schedules by work_unit (xdist's own loadgroup reads `xdist_group`
    marks through a node id suffix that pytest 9 no longer takes)."""
    if getattr(config.option, "dist", "no") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

    class ByTestGroup(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return ByTestGroup(config, log)


@pytest.hookimpl(trylast=True)  # after -m deselected what this run leaves out
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test module that uses ads or creator-score outside STREAM_SERVICE_TESTS would run beside
    the others in parallel: refuse it rather than let it flake."""
    # An xdist worker runs with dist "no" and loadgroup set; the controller collects nothing.
    if not (
        getattr(config.option, "loadgroup", False)
        or getattr(config.option, "dist", "no") == "loadgroup"
    ):
        return
    strays = set()
    for item in items:
        module = getattr(item, "module", None)
        if module is None or work_unit(item.nodeid) == STREAM_SERVICES_GROUP:
            continue
        for value in vars(module).values():
            name = getattr(value, "__module__", None) or getattr(value, "__name__", "")
            if isinstance(name, str) and name.split(".")[0] in _STREAM_SERVICE_MODULES:
                strays.add(item.nodeid.split("::")[0])
    if strays:
        raise pytest.UsageError(
            f"{sorted(strays)} run ads or creator-score: add them to STREAM_SERVICE_TESTS in "
            "shopstream_platform/testing.py (they must not run beside the others)"
        )
