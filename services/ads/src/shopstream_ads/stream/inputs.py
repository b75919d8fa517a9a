"""The combiner's side of ads: every raw input checked, keyed and gathered into one AdsInputBatch
per table partition and window (pure: no I/O but the clock).

Clicks are keyed by install (one device's clicks meet for screening), everything else by buyer:
impressions, the clicks screening passed on, and paid or refunded orders, which used to take a
Faust agent and a topic of their own to be re-keyed. The checks that dead-letter a poison input
happen here, so the worker only sees inputs it can apply.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from shopstream.ads.v1 import ads_events_pb2 as ev
from shopstream.ads.v1 import ads_pb2
from shopstream.commerce.v1 import order_events_pb2, order_pb2
from shopstream_ads.topics import (
    CLICKS_TOPIC,
    IMPRESSIONS_TOPIC,
    LEGACY_BUYER_ORDERS_TOPIC,
    ORDERS_TOPIC,
    SCREENED_TOPIC,
)
from shopstream_platform.combiner import PartitionBatches, SourceEvent
from shopstream_platform.kafka.cloudevents import parse_time
from shopstream_platform.kafka.codec import type_name
from shopstream_platform.kafka.events import InvalidEventError

Item = ev.AdsInput


class AdsInputs:
    """A `WindowReducer` (shopstream_platform.combiner) for the devices and buyers tables."""

    def __init__(
        self,
        partitions: int,
        max_record_bytes: int,
        worker: str,
        tick_s: float | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """`worker`: the attribution worker's app id; screened clicks of any other are skipped.
        Every batch carries the window's watermark (the worker's clock: see
        AdsInputBatch.watermark), and idle partitions get a tick every `tick_s` of it."""
        self._worker = worker
        self._wall_clock = wall_clock
        self._window = PartitionBatches(
            ev.AdsInputBatch, partitions, max_record_bytes, stamp=self._stamp, tick_s=tick_s
        )
        # (topic, ce_type) -> how to gather it; anything else on the topic is skipped.
        self._routes: dict[tuple[str, str], Callable[[bytes, SourceEvent], bool | None]] = {
            (IMPRESSIONS_TOPIC, type_name(ads_pb2.Impression)): self._impression,
            (CLICKS_TOPIC, type_name(ads_pb2.Click)): self._click,
            (SCREENED_TOPIC, type_name(ev.ScreenedClick)): self._screened,
            (ORDERS_TOPIC, type_name(order_events_pb2.OrderPaid)): self._order_paid,
            (ORDERS_TOPIC, type_name(order_events_pb2.OrderRefunded)): self._order_refunded,
            (LEGACY_BUYER_ORDERS_TOPIC, type_name(ev.BuyerOrder)): self._legacy_order,
        }

    @property
    def pending(self) -> int:
        return self._window.pending

    def add(self, topic: str, key: bytes | None, value: bytes, event: SourceEvent) -> bool:
        route = self._routes.get((topic, event.type))
        if route is None:
            return False
        return route(value, event) is not False

    def take(self, watermark: float) -> list[tuple[int, bytes]]:
        # Not known yet (just started): no clock; the worker then uses its own.
        return self._window.take(watermark or None)

    def _stamp(self, batch: ev.AdsInputBatch, watermark: float) -> None:
        batch.watermark.FromNanoseconds(int(watermark * 1e9))
        batch.closed_at.FromNanoseconds(int(self._wall_clock() * 1e9))

    def _item(self, key: str, event_id: str) -> Item:
        item: Item = self._window.add(key)
        item.key, item.event_id = key, event_id
        return item

    # --- gathering ------------------------------------------------------------------------

    def _impression(self, value: bytes, event: SourceEvent) -> None:
        imp = ads_pb2.Impression.FromString(value)
        _require(imp.impression_id, "impression_id")
        _require(imp.campaign_id, "campaign_id")
        _require(imp.buyer_id, "buyer_id")
        if not imp.at.seconds:
            raise InvalidEventError("impression has no time (at)")
        self._item(imp.buyer_id, event.id).impression.CopyFrom(imp)

    def _click(self, value: bytes, event: SourceEvent) -> None:
        click = ads_pb2.Click.FromString(value)
        _require(click.click_id, "click_id")
        _require(click.buyer_id, "buyer_id")
        _require(click.campaign_id, "campaign_id")
        if not click.at.seconds:
            raise InvalidEventError("click has no time (at)")
        # Screening is per install; a click without one is screened with its buyer's others.
        self._item(click.install_id or click.buyer_id, event.id).click.CopyFrom(click)

    def _screened(self, value: bytes, event: SourceEvent) -> bool:
        screened = ev.ScreenedClick.FromString(value)
        if screened.worker and screened.worker != self._worker:
            return False  # another deployment's screening, on the same broker
        _require(screened.click.buyer_id, "click.buyer_id")
        _require(screened.click.click_id, "click.click_id")
        self._item(screened.click.buyer_id, event.id).screened.CopyFrom(screened)
        return True

    def _order_paid(self, value: bytes, event: SourceEvent) -> None:
        message = order_events_pb2.OrderPaid.FromString(value)
        out = self._buyer_order(message.order, event, refund=False)
        out.amount.CopyFrom(message.order.total)
        out.at.CopyFrom(message.paid_at if message.paid_at.seconds else message.order.updated_at)

    def _order_refunded(self, value: bytes, event: SourceEvent) -> None:
        message = order_events_pb2.OrderRefunded.FromString(value)
        out = self._buyer_order(message.order, event, refund=True)
        out.amount.CopyFrom(message.amount)
        out.at.FromDatetime(_time(event))

    def _buyer_order(
        self, order: order_pb2.Order, event: SourceEvent, *, refund: bool
    ) -> ev.BuyerOrder:
        """The fields of a paid or refunded order attribution needs, in the buyer's batch."""
        _require(order.buyer_id, "order.buyer_id")
        _require(order.order_id, "order.order_id")
        out = self._item(order.buyer_id, event.id).order
        out.order_id = order.order_id
        out.buyer_id = order.buyer_id
        out.refund = refund
        out.tracking_consent = order.tracking_consent
        out.ad_click_ids.extend(
            sorted({ln.attribution.ad_click_id for ln in order.lines if ln.attribution.ad_click_id})
        )
        out.creator_ids.extend(
            sorted({ln.attribution.creator_id for ln in order.lines if ln.attribution.creator_id})
        )
        # The join grace starts when the order reaches attribution (see AttributionSettings):
        # by its record's time, the same when the record is read again.
        out.observed_at.FromNanoseconds(int((event.timestamp or self._wall_clock()) * 1e9))
        return out

    def _legacy_order(self, value: bytes, event: SourceEvent) -> None:
        order = ev.BuyerOrder.FromString(value)
        _require(order.buyer_id, "buyer_id")
        self._item(order.buyer_id, event.id).order.CopyFrom(order)


def _require(value: str, field: str) -> None:
    if not value:
        raise InvalidEventError(f"{field} is empty")


def _time(event: SourceEvent) -> datetime:
    try:
        return parse_time(event.time)
    except ValueError:
        raise InvalidEventError(f"malformed ce_time {event.time!r}") from None
