"""The 3-node cluster (`make kafka-cluster-up`): registry topics get RF=3 and min ISR=2."""

import time
import uuid
from dataclasses import replace

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import ConfigResource, ResourceType  # type: ignore[attr-defined]

from shopstream_platform.kafka.admin import admin_client, ensure_topics, wait_for_kafka
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.kafka.topics import load_registry
from shopstream_platform.settings import KafkaSettings

pytestmark = pytest.mark.cluster


async def test_registry_topic_created_with_rf3_and_min_isr2(
    cluster_settings: KafkaSettings,
) -> None:
    assert wait_for_kafka(cluster_settings, timeout_s=60) == 3
    # A registry entry under a fresh name, so the test proves creation rather than finding it.
    spec = replace(
        load_registry().get("platform.heartbeats.v1"),
        name=f"platform.heartbeats-{uuid.uuid4().hex[:8]}.v1",
    )
    assert ensure_topics(cluster_settings, [spec, spec.dlq]) == [spec.name, spec.dlq.name]

    admin = admin_client(cluster_settings)
    for name in (spec.name, spec.dlq.name):
        # Any broker may answer; give the others a moment to learn of the new topic.
        for _ in range(100):
            topic = admin.list_topics(name, timeout=10).topics[name]
            if topic.error is None and len(topic.partitions) == spec.partitions:
                break
            time.sleep(0.1)
        assert len(topic.partitions) == spec.partitions
        for partition in topic.partitions.values():
            assert len(partition.replicas) == 3
            assert len(partition.isrs) == 3
        resource = ConfigResource(ResourceType.TOPIC, name)
        # Whichever broker answers may not know the topic yet (metadata propagates): retry.
        for attempt in range(50):
            try:
                configs = admin.describe_configs([resource])[resource].result(timeout=10)
                break
            except KafkaException as exc:
                if attempt == 49 or exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise
                time.sleep(0.2)
        assert configs["min.insync.replicas"].value == "2"
        assert configs["retention.ms"].value == str(
            spec.retention_ms if name == spec.name else spec.dlq.retention_ms
        )

    # And acks=all writes go through.
    producer = EventProducer(cluster_settings, "shopstream/test")
    await producer.produce_raw_and_wait(spec.name, b"k", b"v", [])
    producer.close()
