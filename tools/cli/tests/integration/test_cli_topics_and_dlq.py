"""The CLI as a user runs it: a subprocess against the real broker."""

import json
import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from shopstream.platform.v1 import heartbeat_pb2
from shopstream_platform.kafka.cloudevents import headers_dict
from shopstream_platform.kafka.dlq import dead_letter_headers
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.settings import KafkaSettings
from shopstream_platform.testing import read_all

pytestmark = pytest.mark.integration


def shopstream(kafka: KafkaSettings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHOPSTREAM_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers}
    return subprocess.run(
        [sys.executable, "-m", "shopstream_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_tail_decodes_protobuf_with_cloudevents_headers(
    kafka_settings: KafkaSettings, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("cli")
    producer = EventProducer(kafka_settings, "shopstream/test")
    meta = await producer.publish_and_wait(
        topic, "i-1", heartbeat_pb2.Heartbeat(service="ads", sequence=11)
    )
    producer.close()

    result = shopstream(
        kafka_settings, "--json", "topics", "tail", topic, "--from-beginning", "--max", "1"
    )
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.strip().splitlines()
    entry = json.loads(line)
    assert entry["ce_id"] == meta.id
    assert entry["ce_type"] == "shopstream.platform.v1.Heartbeat"
    assert entry["key"] == "i-1"
    assert entry["value"] == {"service": "ads", "sequence": "11"}


def test_tail_of_unknown_topic_is_a_clear_error(kafka_settings: KafkaSettings) -> None:
    result = shopstream(kafka_settings, "topics", "tail", "no.such.topic.v1", "--max", "1")
    assert result.returncode == 1
    assert "does not exist" in result.stderr


async def test_dlq_list_and_redrive(
    kafka_settings: KafkaSettings, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("cli")
    producer = EventProducer(kafka_settings, "shopstream/test")
    meta = producer.meta_for(heartbeat_pb2.Heartbeat())
    headers = dead_letter_headers(
        meta.to_headers(), topic=topic, partition=0, offset=7, group="g1", error=ValueError("bad")
    )
    value = heartbeat_pb2.Heartbeat(sequence=3).SerializeToString()
    await producer.produce_raw_and_wait(topic + ".dlq", b"k", value, headers)
    producer.close()

    listed = shopstream(kafka_settings, "--json", "dlq", "list", topic)
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["offset"], row["group"], row["error"], row["message"]) == (
        "7",
        "g1",
        "ValueError",
        "bad",
    )

    redriven = shopstream(kafka_settings, "dlq", "redrive", topic)
    assert redriven.returncode == 0, redriven.stderr
    assert "re-drove 1 record(s)" in redriven.stdout
    [record] = read_all(kafka_settings, topic, expect=1)
    back = headers_dict(record.headers())
    assert back["ce_id"] == meta.id and not any(k.startswith("dlq_") for k in back)
    assert record.value() == value

    again = shopstream(kafka_settings, "dlq", "redrive", topic)
    assert "re-drove 0 record(s)" in again.stdout
