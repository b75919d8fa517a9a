"""The Faust app factory: stream workers wired to the same settings and safety rules as services.

Settings Faust would otherwise default are stated: replication factor (Faust's default is 1),
acks=all, at-least-once processing (exactly_once has open duplicate/fencing reports under kill -9,
so effects are made idempotent instead), RocksDB tables with changelog topics for recovery, or
memory tables in unit tests.

The app's producer makes `flush()` a real barrier (see `ChangelogBarrierProducer`): Faust flushes
the producer right before it commits source offsets, and its own flush can return while table
changelog records are still unsent, so a kill -9 just after a commit lost table updates whose
input offsets were committed.

The app's aiokafka clients (consumer, producer, topic creation) authenticate as the service's
Kafka principal, from the same `KafkaSettings` the confluent-kafka clients use
(`aiokafka_credentials`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import faust
from faust.exceptions import PartitionsMismatch, ProducerSendError
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.transport.drivers.aiokafka import Producer as AIOKafkaProducer
from faust.types import TP, ConsumerT, ProducerT
from faust.types.auth import CredentialsT
from faust.types.tuples import FutureMessage
from google.protobuf.message import Message

from shopstream_platform.kafka.admin import ensure_topics
from shopstream_platform.kafka.dispatch import Dispatcher, RawRecord
from shopstream_platform.kafka.dlq import DeadLetterPublisher
from shopstream_platform.kafka.events import Handler
from shopstream_platform.kafka.topics import TopicSpec
from shopstream_platform.metrics import PlatformMetrics
from shopstream_platform.settings import ConsumerSettings, KafkaSettings

StoreKind = Literal["rocksdb", "memory"]

log = logging.getLogger(__name__)


class ChangelogBarrierProducer(AIOKafkaProducer):
    """Faust's aiokafka producer whose `flush()` returns only once every message handed to
    `send_soon` before the call (table changelog records) is acknowledged by the broker.

    Faust (faust-streaming 0.15) commits source offsets right after `producer.flush()`, but that
    flush is not a barrier: `ProducerBuffer.flush` stops waiting after 0.1 s without progress, and
    it cannot see a record its sender task has already taken off the buffer but not yet handed to
    aiokafka (then the buffer looks empty and aiokafka's own flush does not know the record). The
    source offset of an event was then committed while the changelog record of its table write was
    still in the process; a kill -9 at that moment lost the update for good. A failed changelog
    write is also only logged by Faust, and the offset committed past it; here it fails the flush,
    so the commit does not happen and the worker crashes (its supervisor restarts it and the inputs
    are processed again).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Faust stops delivering records to every agent while more than 100 changelog records
        # wait to be handed to aiokafka (`ProducerBuffer.wait_until_ebb`), draining them one per
        # loop turn: a table flush of 2,000 keys stalled the stream for seconds (freshness p99
        # 5 s at 10k/s). A flush's records drain in the background; the bound stays, higher
        # than one flush (creator-score's max_dirty_creators), as backpressure when the
        # changelog cannot keep up (unbounded, a million-creator run queued 4 GiB).
        self.buffer.max_messages = CHANGELOG_BUFFER_MAX

    def __post_init__(self) -> None:
        super().__post_init__()
        self._unsettled: set[FutureMessage] = set()
        self._send_failure: BaseException | None = None

    def send_soon(self, fut: FutureMessage) -> None:
        self._unsettled.add(fut)
        fut.add_done_callback(self._settled)
        super().send_soon(fut)

    def _settled(self, fut: asyncio.Future[Any]) -> None:
        self._unsettled.discard(fut)
        if not fut.cancelled() and fut.exception() is not None and self._send_failure is None:
            self._send_failure = fut.exception()

    async def flush(self) -> None:
        # Tables that hold their writes until a commit write them now (and wait for the outputs
        # those writes account for): the caller (a commit) has chosen its offsets already.
        app = getattr(self.transport, "app", None)
        for barrier in list(getattr(app, "commit_barriers", ())):
            await barrier()
        # Everything written so far: the table writes of every event it commits are in this
        # snapshot.
        waiting = list(self._unsettled)
        await super().flush()
        if waiting:
            # No timeout of our own: aiokafka fails a record it cannot deliver, and until then
            # not committing is the safe side.
            await asyncio.wait(waiting)
        if self._send_failure is not None:
            raise ProducerSendError(
                f"a record sent with send_soon (table changelog) failed: {self._send_failure!r}"
            ) from self._send_failure


READ_COMMITTED_FETCH_WAIT_MS = 50
CHANGELOG_BUFFER_MAX = 25_000


class _ReadCommittedThread(AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads both when it starts its fetcher, after this.
        consumer._isolation_level = "read_committed"
        # A fetch parked at the broker is not woken when a transaction commits (the last stable
        # offset moves, not the high watermark), so it waits out its full wait, which Faust sets
        # to 1.5 s: measured, score freshness p50 2.5 s at 2,000 events/s. A short wait bounds it.
        consumer._fetch_max_wait_ms = READ_COMMITTED_FETCH_WAIT_MS
        return consumer


class ReadCommittedConsumer(AIOKafkaConsumer):
    """Faust's consumer reading committed records only.

    Faust reads read_uncommitted unless it runs exactly_once itself, but a worker fed by the
    combiner (combiner.py) must not see a window whose transaction was aborted: its inputs are
    written again by the next one. For topics written without transactions nothing changes."""

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return _ReadCommittedThread(self, loop=self.loop, beacon=self.beacon)

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        """The offsets no record will come for (a transactional topic's commit markers), which
        the commit may step over. Faust passes the arriving record's own offset as `offset_to`
        and includes it: that record's offset was then both a gap and an ack, the duplicate cut
        each commit's run of consecutive offsets short, and the committed offset crept 2-4
        records per commit behind the worker (lag growing all day, restarts re-reading it all).
        The gap ends before the record."""
        await super()._add_gap(tp, offset_from, offset_to - 1)


class PlatformFaustApp(faust.App):
    """faust.App with the `ChangelogBarrierProducer`, a read_committed consumer, and a way for an
    agent to end the worker."""

    fatal_reason: BaseException | None = None
    _fatal_event: asyncio.Event | None = None
    _commit_barriers: list[Callable[[], Awaitable[None]]] | None = None

    @property
    def commit_barriers(self) -> list[Callable[[], Awaitable[None]]]:
        """Awaited before every offset commit, ahead of the changelog barrier (see
        `ChangelogBarrierProducer.flush`)."""
        if self._commit_barriers is None:
            self._commit_barriers = []
        return self._commit_barriers

    def add_commit_barrier(self, barrier: Callable[[], Awaitable[None]]) -> None:
        """E.g. a `BatchedTable.flush`: the table's writes then reach its store and changelog once
        per commit interval, however many batches changed a key, and always before the offsets
        of the inputs they account for are committed."""
        self.commit_barriers.append(barrier)

    def _new_producer(self) -> ProducerT:
        return ChangelogBarrierProducer(self.transport, loop=self.loop, beacon=self.beacon)

    def _new_consumer(self) -> ConsumerT:
        return ReadCommittedConsumer(
            self.transport,
            callback=self.topics.on_message,
            on_partitions_revoked=self._on_partitions_revoked,
            on_partitions_assigned=self._on_partitions_assigned,
            beacon=self.beacon,
            loop=self.loop,
        )

    @property
    def fatal_event(self) -> asyncio.Event:
        if self._fatal_event is None:
            self._fatal_event = asyncio.Event()
        return self._fatal_event

    def fail(self, reason: BaseException) -> None:
        """An agent cannot go on (retries ran out, an output failed): no more offset commits,
        and `run_faust_app` ends the service. Faust's own supervisor would restart the agent
        and carry on past the failed input."""
        if self.fatal_reason is None:
            self.fatal_reason = reason
        # Faust acknowledges a failed batch's inputs when it closes the agent's stream, and
        # commits acknowledged offsets on the way out: from now on nothing is committable.
        consumer: Any = self.consumer
        consumer._filter_committable_offsets = lambda tps: {}
        self.fatal_event.set()


def aiokafka_credentials(kafka: KafkaSettings) -> CredentialsT | None:
    """Faust's `broker_credentials` for the settings' security protocol: what `client_config`
    tells librdkafka, in aiokafka's terms, so the worker runs as the same principal as the
    service's other clients. None for PLAINTEXT.

    TLS verifies the broker's certificate against `ssl_ca_location` (else the system's trust
    store) and its host name, as librdkafka does. A SASL protocol needs the mechanism, user and
    password stated: left out, aiokafka would try PLAIN (librdkafka GSSAPI) and the mistake
    would show only as a refused login."""
    protocol = kafka.security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = None
    if protocol in ("SSL", "SASL_SSL"):
        # create_default_context: CERT_REQUIRED and check_hostname, the system's trust store
        # when no CA file is given.
        context = ssl.create_default_context(cafile=kafka.ssl_ca_location)
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    if not (kafka.sasl_mechanism and kafka.sasl_username and kafka.sasl_password):
        raise ValueError(
            f"security_protocol {protocol} needs sasl_mechanism, sasl_username and sasl_password"
        )
    # SASLCredentials turns SASL_PLAINTEXT into SASL_SSL when it is given a context.
    return faust.SASLCredentials(
        username=kafka.sasl_username,
        password=kafka.sasl_password.get_secret_value(),
        mechanism=kafka.sasl_mechanism,
        ssl_context=context,
    )


def make_faust_app(
    app_id: str,
    kafka: KafkaSettings,
    *,
    store: StoreKind = "rocksdb",
    data_dir: Path = Path(".run/faust"),
    partitions: int = 6,
    web_port: int | None = None,
    commit_interval_s: float = 2.8,
) -> PlatformFaustApp:
    """`commit_interval_s`: how often offsets are committed, and so (with the commit barrier)
    how often changed table states are written: a longer one writes a state changed by every
    batch fewer times, and a restart replays more input."""
    brokers = [f"kafka://{b.strip()}" for b in kafka.bootstrap_servers.split(",") if b.strip()]
    # Faust creates only the last level of its data directory.
    data_dir.mkdir(parents=True, exist_ok=True)
    return PlatformFaustApp(
        app_id,
        broker=brokers,
        broker_credentials=aiokafka_credentials(kafka),
        store="rocksdb://" if store == "rocksdb" else "memory://",
        datadir=str(data_dir / app_id),
        topic_replication_factor=kafka.replication_factor,
        topic_partitions=partitions,
        producer_acks=-1,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        # Our services log structured JSON themselves; keep Faust's own web server optional.
        web_enabled=web_port is not None,
        web_port=web_port or 6066,
        web_host="127.0.0.1",
        topic_allow_declare=True,
        # A worker killed without leaving the group holds its partitions until its session times
        # out; Faust's default (60 s) would stall a restart that long.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        broker_commit_interval=commit_interval_s,
    )


# A table write right after a worker created its changelog topics can find Faust's metadata of
# them still empty (PartitionsMismatch "... has 0 partitions"); it passes once the metadata is
# refreshed, so it is retried rather than dead-lettered (which would lose the event).
FAUST_TRANSIENT: tuple[type[BaseException], ...] = (PartitionsMismatch,)
# Attempts for those retries: with the consumer backoff (0.1 s doubling to 5 s) about 30 s.
FAUST_MAX_ATTEMPTS = 12


def agent_dispatcher(
    app_id: str,
    name: str,
    routes: Mapping[type[Message], Handler],
    dead_letters: DeadLetterPublisher,
    metrics: PlatformMetrics,
    settings: ConsumerSettings,
) -> Dispatcher:
    """The Dispatcher of one Faust agent: the platform's decoding, retries and DLQ, with Faust's
    own transient errors retried long enough to outlast a metadata refresh."""
    return Dispatcher(
        group_id=f"{app_id}.{name}",
        routes=routes,
        dead_letters=dead_letters,
        metrics=metrics,
        settings=settings.model_copy(
            update={"max_attempts": max(settings.max_attempts, FAUST_MAX_ATTEMPTS)}
        ),
        transient=FAUST_TRANSIENT,
    )


@dataclass(frozen=True)
class Batching:
    """Handle inputs in batches of up to `max_events` (or what arrived within `within_s`), then
    `flush` (see faust_batch.py) before Faust acknowledges them."""

    flush: Callable[[], Awaitable[None]]
    max_events: int = 500
    within_s: float = 0.02


def protobuf_agent(
    app: faust.App,
    topic: str,
    dispatcher: Dispatcher,
    metrics: PlatformMetrics,
    *,
    name: str | None = None,
    batch: Batching | None = None,
) -> Any:
    """A Faust agent over a registry topic, with the platform's decoding, retries and DLQ.

    Values are read as raw bytes (Faust's own codecs would swallow decode errors): the
    dispatcher decodes protobuf by ce_type and dead-letters what it cannot process, waiting for
    the DLQ's ack, before the agent moves on and Faust acknowledges the offset.

    An error out of the dispatcher (transient retries ran out) or the batch flush ends the
    worker (`PlatformFaustApp.fail`) instead of letting Faust restart the agent past the input.
    """
    channel = app.topic(topic, key_serializer="raw", value_serializer="raw")
    counter = metrics.events_consumed

    async def handle(message: Any) -> None:
        outcome = await dispatcher.dispatch(
            RawRecord(
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                key=message.key,
                value=message.value,
                headers=message.headers,
            )
        )
        counter.labels(metrics.service, topic, dispatcher.group_id, outcome.value).inc()

    async def process(stream: Any) -> None:
        try:
            if batch is None:
                async for event in stream.events():
                    await handle(event.message)
            else:
                async for events in stream.take_events(batch.max_events, batch.within_s):
                    for event in events:
                        await handle(event.message)
                    await batch.flush()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.critical(
                "stream agent failed; ending the worker",
                extra={"topic": topic, "group_id": dispatcher.group_id, "error": repr(exc)},
            )
            if isinstance(app, PlatformFaustApp):
                app.fail(exc)
            raise

    process.__name__ = name or f"agent_{topic.replace('.', '_').replace('-', '_')}"
    return app.agent(channel, name=process.__name__)(process)


def changelog_specs(app: faust.App) -> list[TopicSpec]:
    """The changelog topics of the app's tables, as Faust would create them (compacted, one
    partition per table partition)."""
    specs = []
    for table in app.tables.values():
        specs.append(
            TopicSpec(
                name=table.changelog_topic.get_topic_name(),
                key="table key",
                values=(),
                partitions=table.partitions or app.conf.topic_partitions,
                retention_ms=-1,
                cleanup_policy="compact",
                owner=app.conf.id,
                description=f"Faust changelog of table {table.name}",
            )
        )
    return specs


async def run_faust_app(app: faust.App, kafka: KafkaSettings) -> None:
    """A service's Faust worker as a runtime task (`Runtime.add_task`).

    The tables' changelog topics are created first: when Faust creates them itself at start,
    its consumer's metadata can keep them at 0 partitions for minutes, and every table write
    fails with PartitionsMismatch until it refreshes.

    Returns only by raising: if Faust stops or crashes by itself (e.g. a table changelog write
    failed, so its offsets must not be committed), the task ends, and the service exits non-zero
    for its supervisor to restart it rather than stay SERVING while consuming nothing. On a
    graceful shutdown the runtime cancels the task and the app is stopped here.
    """
    await asyncio.to_thread(ensure_topics, kafka, changelog_specs(app))
    await app.start()
    waits: set[asyncio.Future[Any]] = {asyncio.ensure_future(app.wait_until_stopped())}
    if isinstance(app, PlatformFaustApp):
        waits.add(asyncio.ensure_future(app.fatal_event.wait()))
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        reason = getattr(app, "fatal_reason", None) or app.crash_reason
        raise RuntimeError(f"the Faust app stopped: {reason!r}")
    finally:
        for wait in waits:
            wait.cancel()
        await app.stop()
