"""Live shopping: per session, paid orders, GMV, views and GPM, and the split by product,
recounted from the order events (lines naming the session) and social.live-stats.v1 (views
never go backwards: the highest total counts), compared with CommerceService.GetLiveSession.

A session is compared when it started (or was scheduled) inside the window and its creator is
in scope.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from google.protobuf.message import Message

from shopstream.commerce.v1 import commerce_service_pb2 as pb
from shopstream.commerce.v1 import live_pb2
from shopstream.social.v1 import live_pb2 as social
from shopstream_cli.reconcile.orders import OrderBook
from shopstream_cli.reconcile.report import Report
from shopstream_cli.reconcile.scope import Scope
from shopstream_cli.reconcile.services import Services, ServiceUnavailable
from shopstream_cli.reconcile.source import Topics

LIVE_TOPIC = "commerce.live.v1"
VIEWS_TOPIC = "social.live-stats.v1"
TOPICS: dict[str, dict[str, type[Message]]] = {
    LIVE_TOPIC: {
        cls.DESCRIPTOR.full_name: cls
        for cls in (
            live_pb2.LiveSessionStarted,
            live_pb2.LiveSessionScheduled,
            live_pb2.LiveSessionEnded,
        )
    },
    VIEWS_TOPIC: {social.LiveViewStats.DESCRIPTOR.full_name: social.LiveViewStats},
}


@dataclass
class SessionTally:
    creator_id: str
    orders: int = 0
    gmv_minor: int = 0
    views: int = 0
    # product id -> [orders, units, gmv]
    products: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))
    started: bool = False
    ended: bool = False

    @property
    def gpm_minor(self) -> int:
        return self.gmv_minor * 1_000 // self.views if self.views > 0 else 0


def recount(topics: Topics, book: OrderBook, scope: Scope) -> dict[str, SessionTally]:
    sessions: dict[str, SessionTally] = {}
    for record in topics.of(LIVE_TOPIC):
        session = record.message.session  # type: ignore[attr-defined]
        tally = sessions.setdefault(session.live_session_id, SessionTally(session.creator_id))
        if isinstance(record.message, live_pb2.LiveSessionEnded):
            tally.ended = True
        else:
            tally.started = True
    for record in topics.of(VIEWS_TOPIC):
        stats = record.message
        assert isinstance(stats, social.LiveViewStats)
        viewed = sessions.get(stats.live_session_id)
        if viewed is not None:
            viewed.views = max(viewed.views, stats.total_views)
    for order in book.orders.values():
        if not order.placed or not order.paid:
            continue
        per_session: dict[str, int] = defaultdict(int)
        for line in order.lines.values():
            sold = sessions.get(line.live_session_id) if line.live_session_id else None
            if sold is None:
                continue
            per_session[line.live_session_id] += line.total_minor
            product = sold.products[line.product_id]
            product[1] += line.quantity * order.payments
            product[2] += line.total_minor * order.payments
        for live_session_id, amount in per_session.items():
            sessions[live_session_id].orders += order.payments
            sessions[live_session_id].gmv_minor += amount * order.payments
        # A product counts one order however many of its lines name the session.
        for live_session_id in per_session:
            for product_id in {
                line.product_id
                for line in order.lines.values()
                if line.live_session_id == live_session_id
            }:
                sessions[live_session_id].products[product_id][0] += order.payments
    return {s: t for s, t in sorted(sessions.items()) if t.started and scope.creator(t.creator_id)}


def compare(sessions: dict[str, SessionTally], services: Services, report: Report) -> None:
    check = report.check(
        "live.stats", "per live session: paid orders, GMV, views, GPM vs GetLiveSession"
    )
    products = report.check(
        "live.products", "per live session and product: orders, units, GMV vs GetLiveSession"
    )
    ids = list(sessions)
    try:
        answers = services.calls(
            services.commerce.GetLiveSession,
            [pb.GetLiveSessionRequest(live_session_id=s) for s in ids],
            service="commerce",
        )
    except ServiceUnavailable as exc:
        check.skip_for(exc)
        products.skip_for(exc)
        return
    for session_id, answer in zip(ids, answers, strict=True):
        t = sessions[session_id]
        if answer is None:
            check.compare(session_id, t.orders, None, "commerce does not know the session")
            continue
        stats = answer.session.stats
        check.compare(f"{session_id} orders", t.orders, stats.orders)
        check.compare(f"{session_id} gmv", t.gmv_minor, stats.gmv.amount_minor)
        check.compare(f"{session_id} views", t.views, stats.total_views)
        check.compare(f"{session_id} gpm", t.gpm_minor, stats.gpm_minor)
        got = {
            p.product_id: [p.orders, p.units, p.gmv.amount_minor] for p in answer.session.products
        }
        for product_id in sorted(set(got) | set(t.products)):
            products.compare(
                f"{session_id}/{product_id} orders,units,gmv",
                t.products.get(product_id),
                got.get(product_id),
            )
    report.totals["live"] = {
        "sessions": len(sessions),
        "orders": sum(t.orders for t in sessions.values()),
        "gmv_minor": sum(t.gmv_minor for t in sessions.values()),
    }
