"""Kafka's secure profile (`kafka.sh secure-start`): SASL/SCRAM-SHA-512 over TLS, one principal
per service, ACLs. Every client goes through the platform's own settings (`KafkaSettings.
client_config`: security protocol, mechanism, user, password, CA) and producer.

What each service may write is derived here from the topic registry alone (the topic's owner,
plus the heartbeats every instance sends), independently of the generated ACL list the broker
was given, and checked for every registry topic and every service: its own topics are
acknowledged, every other owner's topic is refused with TOPIC_AUTHORIZATION_FAILED."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TYPE_CHECKING

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

from shopstream.platform.v1 import heartbeat_pb2
from shopstream_platform.kafka.consumer import consumer_config
from shopstream_platform.kafka.producer import DeliveryError, EventProducer
from shopstream_platform.kafka.topics import load_registry
from shopstream_platform.settings import ConsumerSettings, KafkaSettings

if TYPE_CHECKING:
    from conftest import SecureBroker

pytestmark = pytest.mark.security

SERVICES = ("catalog", "commerce", "ads", "creator-score")
HEARTBEATS = "platform.heartbeats.v1"


def may_write(service: str, topic: str) -> bool:
    spec = load_registry().get(topic)
    return spec.owner == service or topic == HEARTBEATS


def _message() -> heartbeat_pb2.Heartbeat:
    return heartbeat_pb2.Heartbeat(instance_id=f"security-{uuid.uuid4().hex[:8]}")


async def _outcome(future: asyncio.Future[None]) -> str:
    try:
        await future
    except DeliveryError as exc:
        return str(exc)
    return "acked"


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_writes_its_own_topics_and_no_other_owners(
    secure_broker: SecureBroker, service: str
) -> None:
    registry = load_registry()
    topics = [spec.name for spec in registry]
    producer = EventProducer(secure_broker.settings(service), f"shopstream/{service}")
    try:
        futures = {
            topic: producer.publish_acked(topic, "k", _message(), producer.meta_for(_message()))
            for topic in topics
        }
        outcomes = {topic: await _outcome(f) for topic, f in futures.items()}
    finally:
        producer.close(5)
    allowed = {t for t in topics if may_write(service, t)}
    assert allowed, f"{service} owns no topic in the registry"
    wrong = {
        topic: outcome
        for topic, outcome in outcomes.items()
        if (outcome == "acked") != (topic in allowed)
        or (topic not in allowed and "TOPIC_AUTHORIZATION_FAILED" not in outcome)
    }
    print(
        f"{service}: {len(allowed)} own topics acknowledged, "
        f"{len(topics) - len(allowed)} others refused"
    )
    assert not wrong, wrong


def _consume(
    settings: KafkaSettings, group: str, topic: str, want: bytes, timeout_s: float = 30.0
) -> KafkaError | bool:
    """A new consumer group member reads the topic from its start: True once it saw the record
    whose value is `want`, the first error it got instead, False when time ran out."""
    config = consumer_config(settings, ConsumerSettings(), group, group)
    config.pop("logger")
    consumer = Consumer(config)
    consumer.subscribe([topic])
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                return error
            if message.value() == want:
                return True
        return False
    finally:
        consumer.close()


async def test_a_service_reads_what_it_consumes_and_its_own_topics_only(
    secure_broker: SecureBroker,
) -> None:
    # catalog writes its stock answer; commerce (which consumes catalog.stock.v1) reads it
    # under a group of its own prefix; ads (which does not) is refused.
    producer = EventProducer(secure_broker.settings("catalog"), "shopstream/catalog")
    marker = _message()
    try:
        await producer.publish_and_wait("catalog.stock.v1", "k", marker)
        await producer.publish_and_wait("catalog.products.v1", "k", marker)
    finally:
        producer.close(5)
    tag = uuid.uuid4().hex[:8]
    want = marker.SerializeToString()

    async def consume(user: str, group: str, topic: str) -> KafkaError | bool:
        return await asyncio.to_thread(
            _consume, secure_broker.settings(user), f"{group}.security-{tag}", topic, want
        )

    assert await consume("commerce", "commerce", "catalog.stock.v1") is True
    assert await consume("catalog", "catalog", "catalog.products.v1") is True
    refused = await consume("ads", "ads", "catalog.stock.v1")
    assert isinstance(refused, KafkaError), refused
    assert refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # A group outside the service's own prefix is refused even on a topic it may read.
    other_group = await consume("commerce", "catalog", "catalog.stock.v1")
    assert isinstance(other_group, KafkaError), other_group
    assert other_group.code() == KafkaError.GROUP_AUTHORIZATION_FAILED


def _errors_seen(config: dict[str, object], wait_s: float = 15.0) -> list[KafkaError]:
    errors: list[KafkaError] = []
    producer = Producer({**config, "error_cb": errors.append})
    deadline = time.monotonic() + wait_s
    while not errors and time.monotonic() < deadline:
        producer.poll(0.2)
    return errors


def test_a_wrong_password_is_refused(secure_broker: SecureBroker) -> None:
    config = secure_broker.settings("catalog", password="not-the-password").client_config()
    config.pop("logger")
    errors = _errors_seen(config)
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
    # The same client with the right password is let in.
    good = secure_broker.settings("catalog").client_config()
    good.pop("logger")
    topics = AdminClient(good).list_topics(timeout=20).topics
    assert "catalog.products.v1" in topics


def test_no_plaintext_and_no_unauthenticated_client_gets_in(secure_broker: SecureBroker) -> None:
    plaintext = _errors_seen({"bootstrap.servers": secure_broker.bootstrap})
    assert plaintext, "a plaintext client raised no error against the secure listener"
    tls_only = _errors_seen(
        {
            "bootstrap.servers": secure_broker.bootstrap,
            "security.protocol": "SSL",
            "ssl.ca.location": secure_broker.ca,
        }
    )
    assert tls_only, "a TLS client without SASL raised no error against the secure listener"
    # A client that does not trust the broker's CA stops at the TLS handshake.
    untrusted = secure_broker.settings("catalog").client_config()
    untrusted.pop("logger")
    untrusted.pop("ssl.ca.location")
    errors = _errors_seen(untrusted)
    # librdkafka reports it as _SSL or as _TRANSPORT naming the failed verification.
    assert any(
        e.code() == KafkaError._SSL or "certificate verify failed" in e.str() for e in errors
    ), errors
