"""The combiner's side of creator-score: every raw input, checked and re-keyed per creator, gathered
into one CreatorInputBatch per creators-table partition and window (pure: no I/O).

What used to be six Faust agents (three that re-keyed orders, live sessions and attributions onto
creators.inputs.v1, three that applied inputs) is now this reducer in the combiner process and
one applier agent (agents.py). The checks that dead-letter a poison input happen here, so the
applier only sees inputs it can apply.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from google.protobuf.message import Message

from shopstream.ads.v1 import ads_events_pb2
from shopstream.commerce.v1 import live_pb2, order_events_pb2
from shopstream.creators.v1 import creators_pb2
from shopstream.social.v1 import creators_pb2 as social
from shopstream_creator_score.stream import rekey
from shopstream_creator_score.stream.topics import (
    ATTRIBUTIONS_TOPIC,
    CONTENT_TOPIC,
    LEGACY_INPUTS_TOPIC,
    LIVE_TOPIC,
    ORDERS_TOPIC,
    PROFILES_TOPIC,
)
from shopstream_platform.combiner import PartitionBatches, SourceEvent
from shopstream_platform.kafka.cloudevents import parse_time
from shopstream_platform.kafka.codec import type_name
from shopstream_platform.kafka.events import InvalidEventError

Item = creators_pb2.CreatorInput


class CreatorInputs:
    """A `WindowReducer` (shopstream_platform.combiner) for the creators table."""

    def __init__(self, partitions: int, max_record_bytes: int) -> None:
        self._window = PartitionBatches(
            creators_pb2.CreatorInputBatch, partitions, max_record_bytes
        )
        # (topic, ce_type) -> how to gather it; anything else on the topic is skipped.
        self._routes: dict[tuple[str, str], Callable[[bytes | None, bytes, SourceEvent], None]] = {
            (PROFILES_TOPIC, type_name(social.CreatorProfile)): self._profile,
            (CONTENT_TOPIC, type_name(social.ContentStats)): self._content,
            (ORDERS_TOPIC, type_name(order_events_pb2.OrderPaid)): self._order_paid,
            (ORDERS_TOPIC, type_name(order_events_pb2.OrderRefunded)): self._order_refunded,
            (LIVE_TOPIC, type_name(live_pb2.LiveSessionStarted)): self._live_started,
            (LIVE_TOPIC, type_name(live_pb2.LiveSessionEnded)): self._live_ended,
            (ATTRIBUTIONS_TOPIC, type_name(ads_events_pb2.Attribution)): self._attribution,
            (LEGACY_INPUTS_TOPIC, type_name(creators_pb2.CreatorSale)): self._legacy_sale,
            (LEGACY_INPUTS_TOPIC, type_name(creators_pb2.CreatorLiveSession)): self._legacy_live,
            (LEGACY_INPUTS_TOPIC, type_name(creators_pb2.CreatorAdCredit)): self._legacy_credit,
        }

    @property
    def pending(self) -> int:
        return self._window.pending

    def add(self, topic: str, key: bytes | None, value: bytes, event: SourceEvent) -> bool:
        route = self._routes.get((topic, event.type))
        if route is None:
            return False
        route(key, value, event)
        return True

    def take(self, watermark: float = 0.0) -> list[tuple[int, bytes]]:
        # Scores decide nothing by time: the watermark is not used.
        return self._window.take()

    def _item(self, creator_id: str) -> Item:
        item: Item = self._window.add(creator_id)
        item.creator_id = creator_id
        return item

    def _drop_last(self, creator_id: str) -> None:
        """Take back the item `_item` just added (its input turned out to be poison)."""
        self._window.drop_last(creator_id)

    @staticmethod
    def _creator_key(key: bytes | None) -> str:
        if not key:
            raise InvalidEventError("record has no key (the creator id)")
        return key.decode()

    def _profile(self, key: bytes | None, value: bytes, event: SourceEvent) -> None:
        self._creator_keyed(key, value, event, "profile", _check_profile)

    def _content(self, key: bytes | None, value: bytes, event: SourceEvent) -> None:
        self._creator_keyed(key, value, event, "content", _check_content)

    def _creator_keyed(
        self,
        key: bytes | None,
        value: bytes,
        event: SourceEvent,
        field: str,
        check: Callable[[Message], None],
    ) -> None:
        """A social input keyed by its creator: parsed straight into the batch (one decode),
        checked, and taken back out when it is poison."""
        creator_id = self._creator_key(key)
        item = self._item(creator_id)
        try:
            message = getattr(item, field)
            message.MergeFromString(value)
            if message.creator_id != creator_id:
                raise InvalidEventError(f"record key {creator_id!r} is not the creator id")
            check(message)
            if not message.HasField("at"):
                item.event_time.FromDatetime(_time(event))
        except Exception:
            self._drop_last(creator_id)
            raise
        item.event_id = event.id

    def _rekeyed(self, records: Sequence[rekey.Rekeyed], event: SourceEvent, field: str) -> None:
        for record in records:
            item = self._item(record.creator_id)
            # Unique per (source event, creator), as the re-keyed records' ids always were.
            item.event_id = f"{event.id}:{record.creator_id}"
            getattr(item, field).CopyFrom(record)
            if not record.HasField("at"):
                item.event_time.FromDatetime(_time(event))

    def _order_paid(self, _key: bytes | None, value: bytes, event: SourceEvent) -> None:
        message = order_events_pb2.OrderPaid.FromString(value)
        self._rekeyed(rekey.sales(message, event.id), event, "sale")

    def _order_refunded(self, _key: bytes | None, value: bytes, event: SourceEvent) -> None:
        message = order_events_pb2.OrderRefunded.FromString(value)
        self._rekeyed(rekey.sales(message, event.id), event, "sale")

    def _live_started(self, _key: bytes | None, value: bytes, event: SourceEvent) -> None:
        message = live_pb2.LiveSessionStarted.FromString(value)
        self._rekeyed(rekey.live_session(message), event, "live_session")

    def _live_ended(self, _key: bytes | None, value: bytes, event: SourceEvent) -> None:
        message = live_pb2.LiveSessionEnded.FromString(value)
        self._rekeyed(rekey.live_session(message), event, "live_session")

    def _attribution(self, _key: bytes | None, value: bytes, event: SourceEvent) -> None:
        message = ads_events_pb2.Attribution.FromString(value)
        self._rekeyed(rekey.ad_credits(message), event, "ad_credit")

    def _legacy(self, key: bytes | None, message: Message, event: SourceEvent, field: str) -> None:
        """A record earlier versions re-keyed onto creators.inputs.v1: already per creator, and
        its ce_id is the per-creator id those versions deduplicated by."""
        creator_id = self._creator_key(key)
        if getattr(message, "creator_id", "") != creator_id:
            raise InvalidEventError(f"record key {creator_id!r} is not the creator id")
        item = self._item(creator_id)
        item.event_id = event.id
        getattr(item, field).CopyFrom(message)
        if not message.HasField("at"):
            item.event_time.FromDatetime(_time(event))

    def _legacy_sale(self, key: bytes | None, value: bytes, event: SourceEvent) -> None:
        self._legacy(key, creators_pb2.CreatorSale.FromString(value), event, "sale")

    def _legacy_live(self, key: bytes | None, value: bytes, event: SourceEvent) -> None:
        self._legacy(key, creators_pb2.CreatorLiveSession.FromString(value), event, "live_session")

    def _legacy_credit(self, key: bytes | None, value: bytes, event: SourceEvent) -> None:
        self._legacy(key, creators_pb2.CreatorAdCredit.FromString(value), event, "ad_credit")


def _time(event: SourceEvent) -> datetime:
    try:
        return parse_time(event.time)
    except ValueError:
        raise InvalidEventError(f"malformed ce_time {event.time!r}") from None


def _check_profile(profile: Message) -> None:
    assert isinstance(profile, social.CreatorProfile)
    if profile.followers < 0:
        raise InvalidEventError("followers must not be negative")


def _check_content(c: Message) -> None:
    assert isinstance(c, social.ContentStats)
    if min(c.views, c.likes, c.comments, c.shares) < 0 or not c.content_id:
        raise InvalidEventError("content_id is required and counters must not be negative")
