"""The stream services on Kafka's secure profile: creator-score and ads, each a real process
(`python -m ...`) with its own SCRAM principal over TLS, run their Faust worker (aiokafka), their
combiner child process and their producers (outputs, dead letters, outbox) on the broker of
`kafka.sh secure-start`, whose ACLs are generated from the topic registry.

Inputs come from outside the services, written as the broker's admin (the social platform and
the edge have no principal on it; which service may write which topic is
test_kafka_secure_profile.py's business); what the services made of them is read back through
their gRPC APIs. A worker given a wrong password does not come up: its log names the refused
authentication."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import faust
import grpc
import pytest
from ads_steps import NOW, AdsWorld
from aiokafka.errors import KafkaConnectionError
from confluent_kafka import Consumer, Producer
from creator_steps import T0, Market
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shopstream.ads.v1 import ads_service_pb2_grpc
from shopstream.creators.v1 import creator_score_service_pb2_grpc
from shopstream_platform.faust_app import make_faust_app
from shopstream_platform.grpc.auth import TokenCodec
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.settings import AuthSettings, KafkaSettings
from shopstream_platform.testing import ServiceProcess

if TYPE_CHECKING:
    from conftest import SecureBroker

pytestmark = [pytest.mark.security, pytest.mark.timeout(600)]

MakeProcess = Callable[[str, str, dict[str, str]], ServiceProcess]
# What each stream service is started as: its module and settings' env prefix.
SERVICES = {
    "creator-score": ("shopstream_creator_score", "SHOPSTREAM_CREATOR_SCORE_"),
    "ads": ("shopstream_ads", "SHOPSTREAM_ADS_"),
}
# A loaded 2-core machine (the secure broker's TLS and SCRAM, two JVMs' worth of start-up) can
# take minutes to bring a service and its combiner up.
START_TIMEOUT_S = 240.0
RESULT_TIMEOUT_S = 120.0


def service_env(settings: KafkaSettings, tmp: Path) -> dict[str, str]:
    """A stream service's settings (without its env prefix): the principal's Kafka settings,
    SQLite and Faust memory tables in `tmp`. The Faust app id stays the service's own, which the
    generated ACLs name (group, `<app id>-` topics, transactional ids)."""
    assert settings.sasl_password is not None and settings.ssl_ca_location is not None
    return {
        "KAFKA__BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "KAFKA__SECURITY_PROTOCOL": settings.security_protocol,
        "KAFKA__SASL_MECHANISM": str(settings.sasl_mechanism),
        "KAFKA__SASL_USERNAME": str(settings.sasl_username),
        "KAFKA__SASL_PASSWORD": settings.sasl_password.get_secret_value(),
        "KAFKA__SSL_CA_LOCATION": settings.ssl_ca_location,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/service.db",
        "STORE": "memory",
        "DATA_DIR": str(tmp / "faust"),
    }


async def started(
    make: MakeProcess, broker: SecureBroker, service: str, tmp: Path
) -> ServiceProcess:
    module, prefix = SERVICES[service]
    process = make(module, prefix, service_env(broker.settings(service), tmp))
    await process.start(timeout_s=START_TIMEOUT_S)
    return process


def read_one(settings: KafkaSettings, topic: str, want: bytes, timeout_s: float) -> bool:
    """Whether a record whose value is `want` arrives on `topic` (read from its start)."""
    config = {
        **settings.client_config(),
        "group.id": f"security-reader-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }
    config.pop("logger")
    consumer = Consumer(config)
    consumer.subscribe([topic])
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None and message.value() == want:
                return True
        return False
    finally:
        consumer.close()


def produce_raw(settings: KafkaSettings, topic: str, value: bytes) -> None:
    """A record with no headers at all, acknowledged."""
    config = settings.client_config()
    config.pop("logger")
    producer = Producer(config)
    producer.produce(topic, value, key=b"poison")
    assert producer.flush(30) == 0, f"the raw record to {topic} was not acknowledged"


async def test_creator_score_scores_a_creator_as_its_own_principal(
    secure_broker: SecureBroker, service_process: MakeProcess, tmp_path: Path
) -> None:
    process = await started(service_process, secure_broker, "creator-score", tmp_path)
    tokens = TokenCodec(AuthSettings())  # the process's default (dev) token secret
    producer = EventProducer(secure_broker.settings("admin"), "shopstream/test-social")
    creator = f"secure-{uuid.uuid4().hex[:8]}"
    poison = f"not a protobuf {uuid.uuid4().hex}".encode()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{process.port}") as channel:
            stub = creator_score_service_pb2_grpc.CreatorScoreServiceStub(channel)
            market = Market(None, stub, producer, tokens, [])  # type: ignore[arg-type]  # no hosted service
            await market.profile(creator, 50_000)
            await market.content(creator, f"{creator}-v1", views=40_000, engagements=2_000)
            await market.sale(creator, f"ord-{creator}", 5_000, at=T0)
            # A record without CloudEvents headers: the combiner dead-letters it, inside its
            # transaction, on the dead-letter twin the ACLs let it write.
            await asyncio.to_thread(
                produce_raw, secure_broker.settings("admin"), "social.creator-profiles.v1", poison
            )

            async def scored() -> None:
                got = (await market.creator(creator)).creator
                # The sale's GMV undecayed (every input at T0), the profile's followers.
                assert got.gmv.amount_minor == 5_000 and got.followers == 50_000, got
                assert got.score > 0 and got.components.engagement > 0, got

            await market.eventually(scored, timeout_s=RESULT_TIMEOUT_S)
        assert await asyncio.to_thread(
            read_one,
            secure_broker.settings("admin"),
            "social.creator-profiles.v1.dlq",
            poison,
            RESULT_TIMEOUT_S,
        ), "the poison record did not reach social.creator-profiles.v1.dlq"
    finally:
        producer.close(5)
    assert process.stop() == 0


async def test_ads_counts_and_attributes_a_click_as_its_own_principal(
    secure_broker: SecureBroker, service_process: MakeProcess, tmp_path: Path
) -> None:
    process = await started(service_process, secure_broker, "ads", tmp_path)
    admin = secure_broker.settings("admin")
    producer = EventProducer(admin, "shopstream/test-edge")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{process.port}") as channel:
            stub = ads_service_pb2_grpc.AdsServiceStub(channel)
            world = AdsWorld(None, stub, producer, TokenCodec(AuthSettings()), admin)  # type: ignore[arg-type]  # no hosted service
            # Through the outbox and ads.campaigns.v1 to the worker's campaign book.
            campaign = await world.campaign("seller-secure")
            at = NOW - timedelta(days=1)
            click = await world.click("buyer", campaign, at)
            await world.paid_order("buyer", 4_000, at + timedelta(hours=1), click_id=click)

            async def attributed() -> None:
                total = (await world.audit(campaign)).total
                # Impression and click screened and counted by the worker; the order credited
                # to the click (ads.attributions.v1, read back by the conversions consumer).
                assert (total.impressions, total.clicks, total.attributed_orders) == (1, 1, 1), (
                    total
                )
                assert total.attributed_gmv.amount_minor == 4_000, total

            await _eventually(attributed, RESULT_TIMEOUT_S)
    finally:
        producer.close(5)
    assert process.stop() == 0


async def _eventually(check: Callable[[], object], timeout_s: float) -> None:
    """Poll an async check until it stops raising AssertionError (or an RPC error)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await check()  # type: ignore[misc]
            return
        except (AssertionError, grpc.aio.AioRpcError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_a_faust_worker_with_a_wrong_password_fails_at_start_naming_the_refusal(
    secure_broker: SecureBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture, service: str
) -> None:
    """The worker alone (the app make_faust_app builds, as the service builds it): its start
    fails within seconds, and the log says the broker refused the credentials."""
    settings = secure_broker.settings(service, password="not-the-password")
    app = make_faust_app(service, settings, store="memory", data_dir=tmp_path, partitions=1)
    source = app.topic(f"{service}.security-probe", value_serializer="raw")

    @app.agent(source)
    async def drain(stream: faust.StreamT[bytes]) -> None:
        async for _ in stream:
            pass

    began = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        await asyncio.wait_for(app.start(), 60)
    elapsed = time.monotonic() - began
    await app.stop()
    refusals = [
        r.getMessage() for r in caplog.records if "SaslAuthenticationFailed" in r.getMessage()
    ]
    assert refusals, [r.getMessage() for r in caplog.records]
    assert "invalid credentials" in refusals[0]
    assert elapsed < 30, f"the refused worker took {elapsed:.0f} s to fail"


async def test_a_service_with_a_wrong_password_never_turns_serving_and_logs_why(
    secure_broker: SecureBroker, service_process: MakeProcess, tmp_path: Path
) -> None:
    """The whole process: before its worker starts, the runtime waits for a broker that answers
    it, and it never answers a refused principal. Health stays NOT_SERVING (never SERVING on a
    worker that consumes nothing); its log names the refusal."""
    module, prefix = SERVICES["creator-score"]
    wrong = secure_broker.settings("creator-score", password="not-the-password")
    process = service_process(module, prefix, service_env(wrong, tmp_path))
    log_path = tmp_path / "stderr.log"
    with log_path.open("wb") as log_file:
        # ServiceProcess.start would retry and wait for SERVING; the same env, stderr kept.
        process.process = subprocess.Popen(
            [sys.executable, "-m", module],
            env=process.env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        statuses = await _health_after_first_answer(process.port, watch_s=20)
    assert process.process.poll() is None, "the service exited; see " + str(log_path)
    assert statuses == {"NOT_SERVING"}, statuses
    text = log_path.read_text(encoding="utf-8", errors="replace")
    assert "SASL authentication error: Authentication failed" in text, text[-2_000:]


async def _health_after_first_answer(port: int, watch_s: float) -> set[str]:
    """The health statuses a process answers from its first answer (its gRPC server is up,
    within START_TIMEOUT_S) over the next `watch_s` seconds."""
    seen: set[str] = set()
    deadline = time.monotonic() + START_TIMEOUT_S
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            try:
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.5)
                continue
            if not seen:
                deadline = time.monotonic() + watch_s
            seen.add(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))
            await asyncio.sleep(0.5)
    return seen
