"""The service's topic names come from the registry (shopstream_ads/topics.py)."""

from __future__ import annotations

from shopstream_ads.topics import INPUT_BATCHES_TOPIC, TABLE_PARTITIONS, TOPICS
from shopstream_platform.kafka.topics import load_registry


def test_every_topic_the_service_declares_is_in_the_registry() -> None:
    registry = load_registry()
    assert [registry.get(name).name for name in TOPICS] == TOPICS


def test_the_input_batches_are_partitioned_like_the_tables() -> None:
    # Partition n of the combiner's output holds the keys of the tables' partition n.
    assert load_registry().get(INPUT_BATCHES_TOPIC).partitions == TABLE_PARTITIONS
