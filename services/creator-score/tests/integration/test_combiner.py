"""The combiner in front of the worker, through Kafka: partitions agree with the producer's, a
poison record reaches its DLQ within seconds while the stream moves on, and what the worker
publishes carries no exact ad-attributed numbers."""

import asyncio
import time
import uuid
from collections.abc import Callable

import grpc
import pytest
from confluent_kafka import Consumer, TopicPartition
from creator_steps import Market
from prometheus_client import generate_latest

from shopstream.creators.v1 import creators_pb2
from shopstream.social.v1 import creators_pb2 as social
from shopstream_creator_score.stream.topics import (
    CONTENT_TOPIC,
    INPUT_BATCHES_TOPIC,
    SCORES_TOPIC,
    TABLE_PARTITIONS,
)
from shopstream_platform.combiner import partition_for
from shopstream_platform.kafka.cloudevents import CloudEventMeta
from shopstream_platform.kafka.codec import type_name
from shopstream_platform.kafka.dlq import H_ERROR_TYPE, H_OFFSET, dlq_topic
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.settings import KafkaSettings
from shopstream_platform.testing import read_all

pytestmark = pytest.mark.integration


async def test_partition_for_is_where_the_producer_puts_a_creator(
    kafka_settings: KafkaSettings, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("partitions", partitions=TABLE_PARTITIONS)
    producer = EventProducer(kafka_settings, "shopstream/test")
    creators = [f"creator-{uuid.uuid4().hex[:6]}" for _ in range(60)]
    try:
        for creator in creators:
            meta = await producer.publish_and_wait(
                topic, creator, social.CreatorProfile(creator_id=creator)
            )
            assert meta is not None
    finally:
        producer.close()
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_settings.bootstrap_servers,
            "group.id": f"check-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    seen: dict[str, int] = {}
    deadline = time.monotonic() + 30
    while len(seen) < len(creators) and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            seen[msg.key().decode()] = msg.partition()
    consumer.close()
    assert seen == {c: partition_for(c, TABLE_PARTITIONS) for c in creators}
    assert len(set(seen.values())) > 1


def _end_offsets(kafka: KafkaSettings, topic: str) -> list[TopicPartition]:
    consumer = Consumer({"bootstrap.servers": kafka.bootstrap_servers, "group.id": "offsets"})
    metadata = consumer.list_topics(topic, timeout=10)
    ends = []
    for p in metadata.topics[topic].partitions:
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
        ends.append(TopicPartition(topic, p, high))
    consumer.close()
    return ends


async def test_a_poison_record_reaches_the_dlq_within_5_s_and_the_stream_moves_on(
    market: Market, ids: Callable[[str], str], kafka_settings: KafkaSettings
) -> None:
    creator = ids("poisoned")
    await market.profile(creator, 1_000)
    await market.eventually(lambda: market.creator(creator))
    dlq = dlq_topic(CONTENT_TOPIC)
    start = _end_offsets(kafka_settings, dlq)
    meta = CloudEventMeta(
        id=uuid.uuid4().hex,
        type=type_name(social.ContentStats),
        source="shopstream/test-poison",
        time=market.producer.meta_for(social.ContentStats()).time,
    )
    await market.producer.produce_raw_and_wait(
        CONTENT_TOPIC, creator.encode(), b"\xff\xfe not protobuf", meta.to_headers()
    )
    sent = time.monotonic()
    await market.content(creator, f"{creator}-v", views=5_000, engagements=100)

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_settings.bootstrap_servers,
            "group.id": f"dlq-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
        }
    )
    consumer.assign(start)
    found = None
    while found is None and time.monotonic() - sent < 15:
        msg = await asyncio.to_thread(consumer.poll, 0.2)
        if msg is not None and not msg.error() and msg.key() == creator.encode():
            found = msg
    consumer.close()
    assert found is not None, "the poison record did not reach the DLQ"
    waited = time.monotonic() - sent
    headers = dict(found.headers() or [])
    assert headers[H_ERROR_TYPE] == b"DecodeError" and int(headers[H_OFFSET]) >= 0
    assert waited <= 5.0, f"dead-lettered after {waited:.1f} s"

    async def moved_on() -> None:
        got = (await market.creator(creator)).creator
        assert got.components.engagement > 0

    await market.eventually(moved_on)


async def test_score_changes_on_the_public_topic_carry_no_ad_sales(
    market: Market, ids: Callable[[str], str], kafka_settings: KafkaSettings
) -> None:
    creator = ids("advertised")
    await market.profile(creator, 5_000)
    order = ids("ord")
    await market.sale(creator, order, 40_000)
    await market.attribution([creator], order, 40_000, campaign=ids("camp"))

    async def credited() -> None:
        assert (await market.creator(creator)).creator.ad_sales.orders == 1

    await market.eventually(credited)
    changes = await asyncio.to_thread(
        read_all,
        kafka_settings,
        SCORES_TOPIC,
        expect=1,
        timeout_s=60,
        match=lambda m: m.key() == creator.encode(),
    )
    assert changes
    for record in changes:
        change = creators_pb2.CreatorScoreChanged.FromString(record.value())
        assert change.creator.creator_id == creator
        assert not change.creator.HasField("ad_sales")


async def test_the_worker_applies_only_its_own_combiners_batches(
    market: Market, ids: Callable[[str], str]
) -> None:
    """Two deployments on one broker share the batches topic: each applies only the records of
    its own combiner group (ce_source), so the other's batches are not applied twice."""
    foreign, own = ids("foreign"), ids("own")
    batch = creators_pb2.CreatorInputBatch()
    item = batch.inputs.add(creator_id=foreign, event_id=uuid.uuid4().hex)
    item.profile.CopyFrom(social.CreatorProfile(creator_id=foreign, followers=9_000))
    item.profile.at.GetCurrentTime()
    meta = CloudEventMeta(
        id=uuid.uuid4().hex,
        type=type_name(creators_pb2.CreatorInputBatch),
        source="shopstream/combiner/another-deployment.combiner",
        time=market.producer.meta_for(batch).time,
    )
    # Keyed by the creator: in the partition of its table partition, where its own would go.
    await market.producer.produce_raw_and_wait(
        INPUT_BATCHES_TOPIC, foreign.encode(), batch.SerializeToString(), meta.to_headers()
    )
    # Behind the foreign record in the same partition, through the worker's own combiner.
    while partition_for(own, TABLE_PARTITIONS) != partition_for(foreign, TABLE_PARTITIONS):
        own = ids("own")
    await market.profile(own, 1_000)
    await market.eventually(lambda: market.creator(own))
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await market.creator(foreign)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_the_combiners_metrics_are_on_the_services_own_endpoint(
    market: Market, ids: Callable[[str], str]
) -> None:
    """The combiner runs as a child process with its own registry; its series are re-exposed on
    the service's /metrics, so one scrape target shows the whole worker."""
    creator = ids("measured")
    await market.profile(creator, 1_000)
    await market.eventually(lambda: market.creator(creator))
    service = {"service": "creator-score"}
    assert market.service.metric("shopstream_combiner_windows_total", service) >= 1
    gathered = {**service, "outcome": "gathered"}
    assert market.service.metric("shopstream_combiner_records_total", gathered) >= 1
    # Only the service's own process series, not the child's as well.
    text = generate_latest(market.service.runtime.metrics.registry).decode()
    assert text.count("\nprocess_cpu_seconds_total ") <= 1


async def test_the_workers_committed_offsets_keep_up_with_the_batches(
    market: Market, ids: Callable[[str], str], kafka_settings: KafkaSettings
) -> None:
    """The batches topic is transactional: a commit marker follows each window's records, so its
    offsets have gaps. The worker's committed offsets must step over them and end one behind the
    end of each partition (its last marker) once the inputs are applied; Faust's own gap
    tracking crept 2-4 offsets per commit, so the group's lag grew all day."""
    group = market.service.runtime.settings.faust_app_id
    for burst in range(8):
        for i in range(20):
            await market.profile(ids(f"lag{burst}-{i}"), 100 + i)
        await asyncio.sleep(0.3)
    last = ids("last")
    await market.profile(last, 1)
    await market.eventually(lambda: market.creator(last))

    def lags() -> list[int]:
        consumer = Consumer(
            {"bootstrap.servers": kafka_settings.bootstrap_servers, "group.id": group}
        )
        tps = [TopicPartition(INPUT_BATCHES_TOPIC, p) for p in range(TABLE_PARTITIONS)]
        out = []
        for tp in consumer.committed(tps, timeout=10):
            _low, high = consumer.get_watermark_offsets(tp, timeout=10)
            out.append(high - tp.offset)
        consumer.close()
        return out

    # Within a few commit intervals (2.8 s each) of the last input applied; the creeping commit
    # needed tens of seconds for these few windows.
    found: list[int] = []
    for _ in range(20):
        found = await asyncio.to_thread(lags)
        if max(found) <= 1:
            break
        await asyncio.sleep(0.5)
    assert max(found) <= 1, f"committed offsets behind the batches: {found}"
