"""RecordImpression and RecordClick: the app's edge reports a served ad or a click; each is
checked, stamped with the time when it has none, and published for the attribution stream
(acknowledged by the broker before the call returns)."""

from __future__ import annotations

from shopstream.ads.v1 import ads_pb2
from shopstream_ads.topics import CLICKS_TOPIC, IMPRESSIONS_TOPIC
from shopstream_ads.usecases.limits import check_click, check_impression
from shopstream_platform.kafka.producer import EventProducer


class Traffic:
    def __init__(self, producer: EventProducer) -> None:
        self._producer = producer

    async def record_impression(self, impression: ads_pb2.Impression) -> None:
        """Keyed by buyer: the attribution joins a buyer's impressions with their orders."""
        check_impression(impression)
        if not impression.HasField("at"):
            impression.at.GetCurrentTime()
        await self._producer.publish_and_wait(IMPRESSIONS_TOPIC, impression.buyer_id, impression)

    async def record_click(self, click: ads_pb2.Click) -> None:
        """Keyed by install (the buyer when there is none): screening counts bursts per device."""
        check_click(click)
        if not click.HasField("at"):
            click.at.GetCurrentTime()
        await self._producer.publish_and_wait(
            CLICKS_TOPIC, click.install_id or click.buyer_id, click
        )
