"""A feed's impressions leave through the producer's batch path: every record arrives once with
the simulator's derived event id and its buyer as key and subject, and the ledger counts each
acknowledged impression for its campaign (the reconciliation's side of the count)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shopstream.ads.v1 import ads_pb2
from shopstream_platform.kafka.cloudevents import headers_dict, parse_meta
from shopstream_platform.settings import KafkaSettings
from shopstream_platform.testing import read_all
from shopstream_simulator.edge import SOCIAL_SOURCE, Edge
from shopstream_simulator.ids import event_id
from shopstream_simulator.ledger import Ledger
from shopstream_simulator.ratelimit import TokenBucket

pytestmark = pytest.mark.integration


async def test_a_feed_is_published_whole_and_counted_per_campaign(
    kafka_settings: KafkaSettings, new_topic: Callable[..., str]
) -> None:
    topic = new_topic("sim-feed", partitions=3)
    ledger = Ledger()
    edge = Edge(kafka_settings, "run-feed", ledger, TokenBucket(10_000, 100))
    feed = []
    for i in range(40):
        campaign = f"cmp-{i % 2}"
        impression = ads_pb2.Impression(
            impression_id=f"imp-{i}", campaign_id=campaign, buyer_id="buyer-1"
        )
        feed.append(("buyer-1", impression, f"imp-{i}", campaign))
    await edge.publish_many(topic, feed, counter="impressions")
    assert await edge.close(20) == 0

    assert ledger.traffic["impressions"] == 40
    assert ledger.served == {"cmp-0": 20, "cmp-1": 20}
    read = read_all(kafka_settings, topic, expect=40, timeout_s=30)
    assert len(read) == 40
    metas = [parse_meta(headers_dict(m.headers())) for m in read]
    assert {m.id for m in metas} == {event_id("run-feed", topic, f"imp-{i}") for i in range(40)}
    assert {m.subject for m in metas} == {"buyer-1"}
    assert {m.source for m in metas} == {SOCIAL_SOURCE}  # not an ads.* topic
    assert {m.key() for m in read} == {b"buyer-1"}
    assert len({m.partition() for m in read}) == 1
