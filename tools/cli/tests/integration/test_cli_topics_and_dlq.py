"""The CLI as a user runs it: a subprocess against the real broker."""

import json
import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from google.protobuf.message import Message

from shopstream.catalog.v1 import events_pb2 as catalog_events_pb2
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


def _lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


async def _publish_mixed(
    kafka: KafkaSettings, topic: str, n: int
) -> list[tuple[str, str, int, int]]:
    """n records spread over the topic's partitions, every third a Heartbeat and the rest
    StockChanged; (key, ce_type, partition, offset) of each, in the order sent."""
    producer = EventProducer(kafka, "shopstream/test")
    sent = []
    for i in range(n):
        key = f"k{i % 7}"
        message: Message = (
            heartbeat_pb2.Heartbeat(service=f"svc-{i}", sequence=i)
            if i % 3 == 0
            else catalog_events_pb2.StockChanged(product_id=f"svc-{i}", on_hand=i)
        )
        meta = await producer.publish_and_wait(topic, key, message)
        sent.append((key, message.DESCRIPTOR.full_name, meta.id))
    producer.close()
    where = {
        headers_dict(r.headers())["ce_id"]: (r.partition(), r.offset())
        for r in read_all(kafka, topic, expect=n)
    }
    return [(key, ce_type, *where[ce_id]) for key, ce_type, ce_id in sent]


async def test_tail_offset_minus_n_prints_exactly_the_last_matching_records(
    kafka_settings: KafkaSettings, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("cli", partitions=3)
    sent = await _publish_mixed(kafka_settings, topic, 30)
    heartbeats = [s for s in sent if s[1] == "shopstream.platform.v1.Heartbeat"]
    assert len(heartbeats) == 10

    result = shopstream(
        kafka_settings,
        "--json",
        "topics",
        "tail",
        topic,
        "--offset",
        "-5",
        "--count",
        "5",
        "--type",
        "shopstream.platform.v1.Heartbeat",
    )
    got = _lines(result)
    # Sent one at a time and awaited, so record time follows the send order.
    assert [(e["partition"], e["offset"]) for e in got] == [
        (p, o) for _, _, p, o in heartbeats[-5:]
    ]
    assert all(e["ce_type"] == "shopstream.platform.v1.Heartbeat" for e in got)

    # The short type name, a key and a pattern narrow further; -N reads back far enough.
    keyed = [s for s in heartbeats if s[0] == "k0"]
    result = shopstream(
        kafka_settings,
        "--json",
        "topics",
        "tail",
        topic,
        "-o",
        "-100",
        "-t",
        "Heartbeat",
        "-k",
        "k0",
    )
    assert [(e["partition"], e["offset"]) for e in _lines(result)] == [
        (p, o) for _, _, p, o in keyed
    ]
    result = shopstream(
        kafka_settings, "--json", "topics", "tail", topic, "-o", "earliest", "--grep", r"svc-2\d\b"
    )
    found = sorted(e["value"].get("service") or e["value"]["product_id"] for e in _lines(result))
    assert found == [f"svc-2{i}" for i in range(10)]


async def test_tail_by_partition_offset_and_time(
    kafka_settings: KafkaSettings, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("cli", partitions=3)
    sent = await _publish_mixed(kafka_settings, topic, 12)
    in_p1 = sorted(o for _, _, p, o in sent if p == 1)
    assert len(in_p1) >= 2

    result = shopstream(
        kafka_settings, "--json", "topics", "tail", topic, "-p", "1", "-o", str(in_p1[1])
    )
    assert [e["offset"] for e in _lines(result)] == in_p1[1:]
    assert shopstream(kafka_settings, "topics", "tail", topic, "-p", "7", "-o", "0").returncode == 1

    # Every record is newer than a minute ago; none is newer than a minute from now.
    assert (
        len(_lines(shopstream(kafka_settings, "--json", "topics", "tail", topic, "--since", "1m")))
        == 12
    )
    future = "2999-01-01T00:00:00Z"
    assert (
        _lines(shopstream(kafka_settings, "--json", "topics", "tail", topic, "--since", future))
        == []
    )

    bad = shopstream(kafka_settings, "topics", "tail", topic, "--offset", "soon")
    assert bad.returncode == 2 and "earliest, latest, N or -N" in bad.stderr


async def test_groups_show_lag_per_partition(
    kafka_settings: KafkaSettings, new_topic: Callable[..., str]
) -> None:
    from confluent_kafka import Consumer, TopicPartition

    topic = new_topic("cli", partitions=2)
    sent = await _publish_mixed(kafka_settings, topic, 10)
    per_partition = {p: sum(1 for s in sent if s[2] == p) for p in (0, 1)}
    group = f"cli-test-{topic}"
    consumer = Consumer({**kafka_settings.client_config(), "group.id": group})
    # The group has read 1 record of partition 0 and all of partition 1.
    consumer.commit(
        offsets=[TopicPartition(topic, 0, 1), TopicPartition(topic, 1, per_partition[1])],
        asynchronous=False,
    )
    consumer.close()

    rows = json.loads(shopstream(kafka_settings, "--json", "groups", "lag", group).stdout)
    assert [(r["topic"], r["partition"], r["committed"], r["end"], r["lag"]) for r in rows] == [
        (topic, 0, 1, per_partition[0], per_partition[0] - 1),
        (topic, 1, per_partition[1], per_partition[1], 0),
    ]
    listed = json.loads(shopstream(kafka_settings, "--json", "groups").stdout)
    [mine] = [g for g in listed if g["group"] == group]
    assert (mine["topics"], mine["partitions"], mine["lag"]) == (topic, 2, per_partition[0] - 1)

    missing = shopstream(kafka_settings, "groups", "lag", "no-such-group-" + topic)
    assert missing.returncode == 1 and "no consumer group" in missing.stderr


def test_dlq_list_says_when_the_topic_or_kafka_is_missing(
    kafka_settings: KafkaSettings, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("cli")
    empty = shopstream(kafka_settings, "dlq", "list", topic)
    assert empty.returncode == 0 and f"no dead letters in {topic}.dlq" in empty.stdout

    typo = shopstream(kafka_settings, "dlq", "list", "commerce.order.v1")
    assert typo.returncode == 1
    assert "does not exist" in typo.stderr and "commerce.orders.v1" in typo.stderr

    away = KafkaSettings(bootstrap_servers="127.0.0.1:1")
    down = shopstream(away, "dlq", "list", "commerce.orders.v1")
    assert down.returncode == 1 and "cannot reach Kafka at 127.0.0.1:1" in down.stderr


async def test_follow_stops_as_soon_as_count_records_came(
    kafka_settings: KafkaSettings, new_topic: Callable[..., str]
) -> None:
    import time

    topic = new_topic("cli")
    producer = EventProducer(kafka_settings, "shopstream/test")
    await producer.publish_and_wait(topic, "k", heartbeat_pb2.Heartbeat(sequence=0))
    env = {**os.environ, "SHOPSTREAM_KAFKA__BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers}
    # From offset 1 (the next record), following: no race with the tail's start.
    command = ["--json", "topics", "tail", topic, "-o", "1", "--follow", "-c", "2"]
    tail = subprocess.Popen(
        [sys.executable, "-m", "shopstream_cli", *command, "--idle-exit", "120"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for i in (1, 2):  # no third record: the tail must not wait for one
            await producer.publish_and_wait(topic, "k", heartbeat_pb2.Heartbeat(sequence=i))
        sent = time.monotonic()
        out, err = tail.communicate(timeout=60)
    finally:
        tail.kill()
        producer.close()
    assert tail.returncode == 0, err
    assert [json.loads(line)["value"]["sequence"] for line in out.splitlines()] == ["1", "2"]
    # It stopped at the second record, not after waiting for a third or for --idle-exit.
    assert time.monotonic() - sent < 30
