"""Inputs keyed by something other than the creator, split into per-creator records.

Orders (key: order id), live sessions (key: session id) and ad attributions (key: campaign id)
are turned into per-creator records, which the combiner gathers into the batch of the creator's
table partition (inputs.py). They are pure: the same input gives the same records, which is what
makes a re-read window harmless.
"""

from __future__ import annotations

from google.protobuf.message import Message

from shopstream.ads.v1 import ads_events_pb2
from shopstream.commerce.v1 import live_pb2, order_events_pb2
from shopstream.creators.v1 import creators_pb2
from shopstream_platform.kafka.events import InvalidEventError

Rekeyed = creators_pb2.CreatorSale | creators_pb2.CreatorLiveSession | creators_pb2.CreatorAdCredit


def sales(message: Message, event_id: str) -> list[creators_pb2.CreatorSale]:
    """Each attributed creator's share of a paid (positive) or refunded (negative) order."""
    if not isinstance(message, order_events_pb2.OrderPaid | order_events_pb2.OrderRefunded):
        raise TypeError(f"not an order payment or refund: {type(message).__name__}")
    refund = isinstance(message, order_events_pb2.OrderRefunded)
    order = message.order
    shares: dict[str, dict[str, int]] = {}
    if isinstance(message, order_events_pb2.OrderRefunded):
        refunded = {line.line_id: line.amount.amount_minor for line in message.lines}
        for line in order.lines:
            if line.attribution.creator_id and line.line_id in refunded:
                by_cat = shares.setdefault(line.attribution.creator_id, {})
                by_cat[line.category_id] = by_cat.get(line.category_id, 0) - refunded[line.line_id]
    else:
        for line in order.lines:
            if line.attribution.creator_id:
                by_cat = shares.setdefault(line.attribution.creator_id, {})
                by_cat[line.category_id] = (
                    by_cat.get(line.category_id, 0) + line.line_total.amount_minor
                )
    out = []
    for creator_id, by_cat in sorted(shares.items()):
        sale = creators_pb2.CreatorSale(
            sale_id=f"{event_id}:{creator_id}",
            creator_id=creator_id,
            order_id=order.order_id,
            by_category={c: a for c, a in by_cat.items() if c},
            refund=refund,
        )
        sale.amount.amount_minor = sum(by_cat.values())
        sale.amount.currency = order.total.currency
        if order.HasField("updated_at"):
            sale.at.CopyFrom(order.updated_at)
        out.append(sale)
    return out


def live_session(message: Message) -> list[creators_pb2.CreatorLiveSession]:
    """A session's start or end for its creator; pins and running stats change no score."""
    if isinstance(message, live_pb2.LiveSessionStarted | live_pb2.LiveSessionEnded):
        session = message.session
        if not session.live_session_id or not session.creator_id:
            raise InvalidEventError("live session id and creator id are required")
        ended = isinstance(message, live_pb2.LiveSessionEnded)
        record = creators_pb2.CreatorLiveSession(
            live_session_id=session.live_session_id,
            creator_id=session.creator_id,
            ended=ended,
        )
        if session.HasField("started_at"):
            record.started_at.CopyFrom(session.started_at)
        if ended:
            record.peak_viewers = session.stats.peak_viewers
            record.total_views = session.stats.total_views
            if session.HasField("ended_at"):
                record.at.CopyFrom(session.ended_at)
        elif session.HasField("started_at"):
            record.at.CopyFrom(session.started_at)
        return [record]
    return []


def ad_credits(message: Message) -> list[creators_pb2.CreatorAdCredit]:
    """An attribution's amount split evenly among the order's creators (the remainder, in minor
    units, goes to the first ones in id order, so the shares add up to the amount exactly)."""
    if not isinstance(message, ads_events_pb2.Attribution):
        raise TypeError(f"not an attribution: {type(message).__name__}")
    creators = sorted(set(message.creator_ids))
    if not creators:
        return []
    if not message.attribution_id:
        raise InvalidEventError("attribution_id is required")
    total = message.amount.amount_minor
    share, remainder = divmod(abs(total), len(creators))
    sign = -1 if total < 0 else 1
    out = []
    for i, creator_id in enumerate(creators):
        credit = creators_pb2.CreatorAdCredit(
            credit_id=f"{message.attribution_id}:{creator_id}",
            creator_id=creator_id,
            attribution_id=message.attribution_id,
            order_id=message.order_id,
            campaign_id=message.campaign_id,
            refund=message.refund,
            withdrawn=message.withdrawn,
        )
        credit.amount.amount_minor = sign * (share + (1 if i < remainder else 0))
        credit.amount.currency = message.amount.currency
        if message.HasField("ordered_at"):
            credit.at.CopyFrom(message.ordered_at)
        out.append(credit)
    return out
