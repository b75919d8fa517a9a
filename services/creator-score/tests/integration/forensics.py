"""What a creator-score deployment wrote about some creators, read back from its topics: the
additive inputs (sales, ad credits) in its combiner's batch records, committed or aborted, and
every state its applier wrote to the table's changelog. A recovery test prints it for the
creators that came out different, so a failure says where an input went missing (never batched,
batched but never applied, applied but its state never written) rather than only that it did."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from shopstream.creators.v1 import creators_pb2
from shopstream_creator_score.settings import CreatorScoreSettings
from shopstream_creator_score.stream.combiner import combiner_group
from shopstream_creator_score.stream.topics import INPUT_BATCHES_TOPIC
from shopstream_platform.combiner import batch_source
from shopstream_platform.settings import KafkaSettings


@dataclass(frozen=True)
class _Record:
    where: tuple[int, int]  # partition, offset
    key: bytes
    value: bytes
    source: str  # ce_source


def _records(kafka: KafkaSettings, topic: str, *, committed: bool) -> list[_Record]:
    """Every record of `topic` (from each partition's start to its end at the call)."""
    consumer = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "group.id": "creator-score-forensics",
            "enable.auto.commit": False,
            "isolation.level": "read_committed" if committed else "read_uncommitted",
        }
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        out: list[_Record] = []
        for partition in metadata.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, partition, low)])
            # Until a read gives nothing: a read_committed reader never sees the end offset
            # itself when the partition ends in a transaction marker.
            while batch := consumer.consume(1_000, timeout=2):
                for m in batch:
                    if m.error() is None:
                        headers = {
                            pair[0]: pair[1]
                            for pair in m.headers() or []
                            if isinstance(pair[1], bytes)
                        }
                        out.append(
                            _Record(
                                (partition, m.offset() or 0),
                                m.key() or b"",
                                m.value() or b"",
                                headers.get("ce_source", b"").decode(),
                            )
                        )
                if (batch[-1].offset() or 0) >= high - 1:
                    break
        return out
    finally:
        consumer.close()


def trace_creators(kafka: KafkaSettings, app_id: str, creators: list[str]) -> str:
    """Per creator: its additive inputs per batch record ((partition, offset), C committed or A
    aborted), then its changelog states (offset, wm, GMV, ad orders, remembered ids); and the
    app's committed offsets on the batch topic."""
    wanted = set(creators)
    source = batch_source(combiner_group(CreatorScoreSettings(faust_app_id=app_id)))
    committed: set[tuple[int, int]] = set()
    lines: dict[str, list[str]] = defaultdict(list)
    for read_committed in (True, False):
        for m in _records(kafka, INPUT_BATCHES_TOPIC, committed=read_committed):
            if m.source != source:
                continue
            where = m.where
            if read_committed:
                committed.add(where)
            elif where in committed:
                continue
            batch = creators_pb2.CreatorInputBatch.FromString(m.value)
            for item in batch.inputs:
                kind = item.WhichOneof("input")
                if item.creator_id in wanted and kind in ("sale", "ad_credit"):
                    what = getattr(item, kind)
                    amount = item.sale.amount.amount_minor if kind == "sale" else ""
                    lines[item.creator_id].append(
                        f"  batch {where} {'C' if read_committed else 'A'} {kind} "
                        f"{what.order_id} {amount} id={item.event_id}"
                    )
    changelog = f"{app_id}-creators-changelog"
    for m in _records(kafka, changelog, committed=False):
        key = json.loads(m.key) if m.key else None
        if key not in wanted:
            continue
        state = json.loads(m.value) if m.value else None
        where = m.where
        if state is None:
            lines[key].append(f"  state {where} deleted")
            continue
        lines[key].append(
            f"  state {where} wm={state.get('wm')} gmv={round(state['gmv'][0])} "
            f"ad_orders={state.get('ad_orders')} recent={len(state.get('recent', []))}"
        )
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
    group = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(app_id)])[app_id]
    offsets = sorted(
        (tp.partition, tp.offset)
        for tp in group.result(timeout=10).topic_partitions
        if tp.topic == INPUT_BATCHES_TOPIC
    )
    out = [f"{app_id}: committed offsets on {INPUT_BATCHES_TOPIC} {offsets}"]
    for creator in creators:
        out.append(f"{creator}:")
        out += lines.get(creator, ["  nothing"])
    return "\n".join(out)
