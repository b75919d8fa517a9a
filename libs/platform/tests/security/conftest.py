"""Brokers of the security tests' own (`make test-security`): a plaintext node for the services
under test and a node in the secure profile (SASL/SCRAM over TLS, per-service users, ACLs), both
started with deploy/kafka/kafka.sh on free loopback ports in a temporary run directory (the
stack's jars linked in) and stopped and deleted when the session ends. The shared broker and the
stack's topics are never touched.

The four services (catalog, commerce, ads, creator-score) are started once, on the plaintext
node, for the session (`services`): the auth-table tests and the fuzzing tests call the same
instances."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from ads_steps import AdsWorld, running_ads
from commerce_steps import Shop, running_shop
from confluent_kafka import Consumer, KafkaException, TopicPartition
from creator_steps import Market, running_market
from pydantic import SecretStr

from shopstream_platform.grpc.auth import TokenCodec
from shopstream_platform.kafka.admin import ensure_topics
from shopstream_platform.kafka.topics import load_registry
from shopstream_platform.settings import AuthSettings, KafkaSettings
from shopstream_platform.testing import HostedService, free_port

REPO = Path(__file__).resolve().parents[4]
KAFKA_SH = REPO / "deploy" / "kafka" / "kafka.sh"
STACK_LIBS = Path(os.environ.get("SHOPSTREAM_RUN_DIR", REPO / ".run")) / "kafka" / "libs"


class OwnBroker:
    """One kafka.sh node (`start` or `secure-start`) in a temporary run directory."""

    def __init__(self, profile: str) -> None:
        self.profile = profile
        self.port = free_port()
        self.controller_port = free_port()
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"shopstream-security-{profile}-"))
        self.bootstrap = f"127.0.0.1:{self.port}"
        prefix = "KAFKA_SECURE_" if profile == "secure" else "KAFKA_"
        self.env = {
            **os.environ,
            "SHOPSTREAM_RUN_DIR": str(self.run_dir),
            f"{prefix}PORT": str(self.port),
            f"{prefix}CONTROLLER_PORT": str(self.controller_port),
            "KAFKA_START_TIMEOUT": "180",
        }

    def _run(self, command: str, timeout_s: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(KAFKA_SH), command],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def start(self) -> OwnBroker:
        if not (STACK_LIBS / ".pom.sha256").exists():
            raise RuntimeError(f"no Kafka jars in {STACK_LIBS}: make kafka-jars")
        (self.run_dir / "kafka").mkdir(parents=True)
        (self.run_dir / "kafka" / "libs").symlink_to(STACK_LIBS)
        out = self._run("secure-start" if self.profile == "secure" else "start", 300)
        if out.returncode != 0:
            self.stop()
            raise RuntimeError(f"{self.profile} broker did not start:\n{out.stdout}\n{out.stderr}")
        return self

    def stop(self) -> None:
        self._run("secure-stop" if self.profile == "secure" else "stop", 120)
        shutil.rmtree(self.run_dir, ignore_errors=True)


@dataclass(frozen=True)
class SecureBroker:
    bootstrap: str
    node_dir: Path

    @property
    def ca(self) -> str:
        return str(self.node_dir / "tls" / "ca.pem")

    def password(self, user: str) -> str:
        return (self.node_dir / "credentials" / user).read_text(encoding="utf-8").strip()

    def settings(self, user: str, password: str | None = None) -> KafkaSettings:
        """Client settings of one principal (the service users, `shopstream-ops`, `admin`)."""
        return KafkaSettings(
            bootstrap_servers=self.bootstrap,
            security_protocol="SASL_SSL",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username=user,
            sasl_password=SecretStr(password if password is not None else self.password(user)),
            ssl_ca_location=self.ca,
            delivery_timeout_ms=30_000,
            connect_timeout_s=20,
        )


@pytest.fixture(scope="session")
def secure_broker() -> Iterator[SecureBroker]:
    broker = OwnBroker("secure").start()
    try:
        secure = SecureBroker(broker.bootstrap, broker.run_dir / "kafka" / "secure")
        wait_for_leaders(secure.settings("admin"))
        yield secure
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def plain_bootstrap() -> Iterator[str]:
    """A plaintext node with every registry topic, for the services whose RPCs are tested."""
    broker = OwnBroker("plain").start()
    try:
        settings = KafkaSettings(bootstrap_servers=broker.bootstrap)
        # In groups, each led before the next (ensure_topics): all 52 in one request overloaded
        # the controller at load 26 on 2 cores, the broker fenced itself.
        ensure_topics(settings, load_registry().with_dlqs())
        wait_for_leaders(settings)
        yield broker.bootstrap
    finally:
        broker.stop()


def wait_for_leaders(settings: KafkaSettings, timeout_s: float = 120.0) -> None:
    """Until every partition answers a ListOffsets and the group coordinator a commit (a
    just-created topic answers NOT_LEADER_FOR_PARTITION for a while, the first group commit
    NOT_COORDINATOR while __consumer_offsets loads; the services' test set-up retries neither)."""
    config = {**settings.client_config(), "group.id": "security-warm-up"}
    config.pop("logger")
    consumer = Consumer(config)
    deadline = time.monotonic() + timeout_s
    try:
        pending = [
            TopicPartition(t.topic, p)
            for t in consumer.list_topics(timeout=10).topics.values()
            if not t.topic.startswith("__")
            for p in t.partitions
        ]
        warm_up = [TopicPartition(pending[0].topic, pending[0].partition, 0)]
        while True:
            try:
                while pending:
                    consumer.get_watermark_offsets(pending[-1], timeout=10)
                    pending.pop()
                consumer.commit(offsets=warm_up, asynchronous=False)
                return
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        consumer.close()


@dataclass(frozen=True)
class Endpoint:
    """One service's gRPC API: its full service name (as in the protos), a channel to it, and
    the auth settings it checks tokens with."""

    service: str
    channel: grpc.aio.Channel
    auth: AuthSettings

    @property
    def tokens(self) -> TokenCodec:
        return TokenCodec(self.auth)


@dataclass(frozen=True)
class Services:
    """The four services on the session's plaintext broker: each one's test world (for set-up
    steps and outbox checks) and its gRPC endpoint."""

    shop: Shop  # catalog and commerce
    ads_world: AdsWorld
    market: Market  # creator-score
    catalog: Endpoint
    commerce: Endpoint
    ads: Endpoint
    creators: Endpoint


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def services(
    plain_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Services]:
    """Started once for both the auth-table and the fuzzing tests (each file used to start its
    own: eight service start-ups and stops a run). They run in the session's event loop, so the
    tests that use them must too (`pytest.mark.asyncio(loop_scope="session")`)."""
    kafka = KafkaSettings(
        bootstrap_servers=plain_bootstrap, delivery_timeout_ms=30_000, connect_timeout_s=20
    )
    async with contextlib.AsyncExitStack() as stack:
        shop = await stack.enter_async_context(running_shop(kafka, tmp_path_factory.mktemp("shop")))
        ads = await stack.enter_async_context(running_ads(kafka, tmp_path_factory.mktemp("ads")))
        market = await stack.enter_async_context(
            running_market(kafka, tmp_path_factory.mktemp("creator-score"))
        )

        def stop_all() -> None:
            """On the way out all four are told to stop at once (each takes 1-3 s, mostly its
            consumers leaving their groups); each context then waits for its own one's exit."""
            for service in (shop.catalog, shop.commerce, ads.service, market.service):
                service.runtime.stop()

        stack.callback(stop_all)

        async def endpoint(service: str, hosted: HostedService) -> Endpoint:
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{hosted.port}")
            await stack.enter_async_context(channel)
            return Endpoint(service, channel, hosted.runtime.settings.auth)

        yield Services(
            shop,
            ads,
            market,
            catalog=await endpoint("shopstream.catalog.v1.CatalogService", shop.catalog),
            commerce=await endpoint("shopstream.commerce.v1.CommerceService", shop.commerce),
            ads=await endpoint("shopstream.ads.v1.AdsService", ads.service),
            creators=await endpoint("shopstream.creators.v1.CreatorScoreService", market.service),
        )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests of this folder that use `services` run last, one after another: the services'
    Kafka clients heartbeat and poll in the session's event loop, which turns only while such a
    test runs; a secure-profile or TLS test in between would stall them past their session
    timeouts (their groups rebalancing under the next test)."""
    here = Path(__file__).parent
    items.sort(
        key=lambda item: (
            item.path.is_relative_to(here) and "services" in getattr(item, "fixturenames", ())
        )
    )
