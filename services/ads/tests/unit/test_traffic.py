"""RecordImpression / RecordClick (usecases/traffic.py): checked, stamped, published with their
keys (a stand-in producer: no broker)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from shopstream.ads.v1 import ads_pb2
from shopstream_ads.topics import CLICKS_TOPIC, IMPRESSIONS_TOPIC
from shopstream_ads.usecases.traffic import Traffic
from shopstream_platform.errors import InvalidArgumentError


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []

    async def publish_and_wait(self, topic: str, key: str, message: Any) -> None:
        self.sent.append((topic, key, message))


def traffic() -> tuple[Traffic, Producer]:
    producer = Producer()
    return Traffic(cast(Any, producer)), producer


async def test_an_impression_is_stamped_and_keyed_by_buyer() -> None:
    use_case, producer = traffic()
    impression = ads_pb2.Impression(impression_id="i1", campaign_id="c1", buyer_id="b1")
    await use_case.record_impression(impression)
    assert [(t, k) for t, k, _ in producer.sent] == [(IMPRESSIONS_TOPIC, "b1")]
    assert impression.HasField("at")


async def test_a_click_is_keyed_by_install_else_buyer_and_keeps_its_time() -> None:
    use_case, producer = traffic()
    with_install = ads_pb2.Click(click_id="k1", campaign_id="c1", buyer_id="b1", install_id="d1")
    with_install.at.FromSeconds(1_000)
    await use_case.record_click(with_install)
    await use_case.record_click(ads_pb2.Click(click_id="k2", campaign_id="c1", buyer_id="b2"))
    assert [(t, k) for t, k, _ in producer.sent] == [(CLICKS_TOPIC, "d1"), (CLICKS_TOPIC, "b2")]
    assert with_install.at.seconds == 1_000


async def test_a_touch_out_of_bounds_is_refused_unpublished() -> None:
    use_case, producer = traffic()
    with pytest.raises(InvalidArgumentError) as raised:
        await use_case.record_click(ads_pb2.Click(click_id="k1", campaign_id="c1"))
    assert raised.value.field == "click.buyer_id"
    assert producer.sent == []
