"""Creates registry topics with their settings stated explicitly, and checks Kafka is reachable."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from shopstream_platform.kafka.topics import TopicSpec
from shopstream_platform.settings import KafkaSettings

log = logging.getLogger(__name__)


class KafkaUnavailableError(RuntimeError):
    """No broker answered within the connect timeout."""


def admin_client(settings: KafkaSettings) -> AdminClient:
    return AdminClient(settings.client_config())


def probe_kafka(settings: KafkaSettings, timeout_s: float = 2.0) -> int:
    """Brokers answering a metadata request within the timeout (0 when none)."""
    try:
        metadata = admin_client(settings).list_topics(timeout=timeout_s)
    except KafkaException:
        return 0
    return len(metadata.brokers)


def wait_for_kafka(settings: KafkaSettings, timeout_s: float | None = None) -> int:
    """Block until the cluster answers a metadata request; returns the number of brokers."""
    deadline = time.monotonic() + (
        timeout_s if timeout_s is not None else settings.connect_timeout_s
    )
    while time.monotonic() < deadline:
        brokers = probe_kafka(settings, timeout_s=min(2.0, max(0.1, deadline - time.monotonic())))
        if brokers:
            return brokers
        time.sleep(0.5)
    raise KafkaUnavailableError(f"Kafka at {settings.bootstrap_servers} did not answer in time")


def topic_config(spec: TopicSpec, settings: KafkaSettings) -> tuple[int, dict[str, str]]:
    """Replication factor and topic configs, every value explicit."""
    rf = spec.replication_factor or settings.replication_factor
    min_isr = spec.min_insync_replicas or settings.min_insync_replicas
    return rf, {
        "min.insync.replicas": str(min_isr),
        "retention.ms": str(spec.retention_ms),
        "cleanup.policy": spec.cleanup_policy,
    }


# Topics per CreateTopics request. A freshly started broker given all 52 registry topics (with
# their DLQs) in one request, under load, overloaded its controller's event queue and fenced
# itself; partitions then answered NOT_LEADER_FOR_PARTITION for about a minute. Groups of this
# size, each waited for before the next, keep the controller's queue short.
CREATE_GROUP_SIZE = 20


def ensure_topics(
    settings: KafkaSettings, specs: Iterable[TopicSpec], timeout_s: float = 30.0
) -> list[str]:
    """Create missing topics; existing ones are left as they are. Returns the names created.

    Created CREATE_GROUP_SIZE at a time, each group with a leader on every partition before the
    next is asked for; `timeout_s` bounds each request and each group's wait."""
    admin = admin_client(settings)
    existing = set(admin.list_topics(timeout=timeout_s).topics)
    wanted = [s for s in {s.name: s for s in specs}.values() if s.name not in existing]
    if not wanted:
        return []
    created: list[str] = []
    for start in range(0, len(wanted), CREATE_GROUP_SIZE):
        created += _create_group(
            admin, settings, wanted[start : start + CREATE_GROUP_SIZE], timeout_s
        )
    log.info("topics created", extra={"topics": created})
    return created


def _create_group(
    admin: AdminClient, settings: KafkaSettings, specs: list[TopicSpec], timeout_s: float
) -> list[str]:
    """One CreateTopics request, then until every partition of the topics it made has a leader."""
    new_topics = []
    for spec in specs:
        rf, config = topic_config(spec, settings)
        new_topics.append(
            NewTopic(
                spec.name, num_partitions=spec.partitions, replication_factor=rf, config=config
            )
        )
    created = []
    for name, future in admin.create_topics(new_topics, request_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
            created.append(name)
        except KafkaException as exc:
            error = exc.args[0]
            # Another instance created it between our listing and our request: that is fine.
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise
    # Creation is asynchronous on the controller: wait until the metadata shows every partition
    # of every new topic with a leader, so producers and consumers can use them at once.
    partitions = {s.name: s.partitions for s in specs}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        topics = admin.list_topics(timeout=timeout_s).topics
        if all(_ready(topics.get(n), partitions[n]) for n in created):
            break
        time.sleep(0.1)
    return created


def _ready(metadata: Any, partitions: int) -> bool:
    if metadata is None or metadata.error is not None or len(metadata.partitions) != partitions:
        return False
    return all(p.leader >= 0 and not p.error for p in metadata.partitions.values())
