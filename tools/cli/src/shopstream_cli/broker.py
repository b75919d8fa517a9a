"""Reaching Kafka from the CLI: one clear sentence when the broker or a topic is missing."""

from __future__ import annotations

import difflib

from confluent_kafka import Consumer, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._metadata import ClusterMetadata

from shopstream_platform.kafka.topics import load_registry
from shopstream_platform.settings import KafkaSettings

METADATA_TIMEOUT_S = 5.0


class CliError(Exception):
    """A failure the user can act on; `main` prints the message and exits 1."""


def cluster_metadata(client: Consumer | AdminClient, kafka: KafkaSettings) -> ClusterMetadata:
    try:
        metadata: ClusterMetadata = client.list_topics(timeout=METADATA_TIMEOUT_S)
    except KafkaException as exc:
        raise CliError(
            f"cannot reach Kafka at {kafka.bootstrap_servers} ({exc.args[0].str()}); "
            "is it running? (`shopstream status`, `make kafka-up`)"
        ) from exc
    return metadata


def require_topic(client: Consumer | AdminClient, kafka: KafkaSettings, topic: str) -> list[int]:
    """The partitions of `topic`; CliError naming what is wrong when it is not on the broker."""
    metadata = cluster_metadata(client, kafka)
    found = metadata.topics.get(topic)
    if found is None or found.error is not None:
        raise CliError(f"topic {topic!r} does not exist on {kafka.bootstrap_servers}{hint(topic)}")
    return sorted(found.partitions)


def hint(topic: str) -> str:
    """Why a topic name may be wrong, from the registry."""
    names = {t.name for t in load_registry()}
    base = topic.removesuffix(".dlq")
    if base in names:
        return " (it is registered: create the registry's topics with `shopstream up`)"
    close = difflib.get_close_matches(base, sorted(names), n=3, cutoff=0.6)
    suggestion = f"; did you mean {', '.join(close)}?" if close else ""
    return f": not a registered topic (see `shopstream topics list`){suggestion}"
