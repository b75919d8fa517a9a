"""Creator-score's inputs that can be recounted exactly: live sessions hosted per creator (started
or ended on commerce.live.v1) and net ad-credited orders per creator (from ads.attributions.v1: credits
minus withdrawn credits, refunds do not change the count), compared with
CreatorScoreService.GetCreator as the audit principal (ad sales are noised for everyone else).

The decayed GMV, GPM and the score itself depend on the time they are read and are not compared.
"""

from __future__ import annotations

from collections import defaultdict

from google.protobuf.message import Message

from shopstream.ads.v1 import ads_events_pb2 as ev
from shopstream.commerce.v1 import live_pb2
from shopstream.creators.v1 import creator_score_service_pb2 as cs
from shopstream_cli.reconcile.report import Report
from shopstream_cli.reconcile.scope import Scope
from shopstream_cli.reconcile.services import AUDIT, Services, ServiceUnavailable
from shopstream_cli.reconcile.source import Topics

TOPICS: dict[str, dict[str, type[Message]]] = {
    "commerce.live.v1": {
        cls.DESCRIPTOR.full_name: cls
        for cls in (live_pb2.LiveSessionStarted, live_pb2.LiveSessionEnded)
    },
    "ads.attributions.v1": {ev.Attribution.DESCRIPTOR.full_name: ev.Attribution},
}


def recount(topics: Topics, scope: Scope) -> dict[str, tuple[int, int]]:
    """Creator -> (live sessions, net ad-credited orders)."""
    sessions: dict[str, set[str]] = defaultdict(set)
    for record in topics.of("commerce.live.v1"):
        session = record.message.session  # type: ignore[attr-defined]
        # A session counts once whichever of its start and end creator-score sees first.
        sessions[session.creator_id].add(session.live_session_id)
    credited: dict[str, int] = defaultdict(int)
    for record in topics.of("ads.attributions.v1"):
        a = record.message
        assert isinstance(a, ev.Attribution)
        if a.refund:
            continue
        for creator_id in set(a.creator_ids):
            credited[creator_id] += -1 if a.withdrawn else 1
    creators = {c for c in set(sessions) | set(credited) if scope.creator(c)}
    return {c: (len(sessions.get(c, ())), credited.get(c, 0)) for c in sorted(creators)}


def compare(
    inputs: dict[str, tuple[int, int]], scope: Scope, services: Services, report: Report
) -> None:
    check = report.check(
        "creators.inputs",
        "per creator: live sessions hosted and net ad-credited orders vs creator-score's "
        "GetCreator (audit)",
    )
    if not scope.creators_complete:
        check.skip(
            "a start time without creator prefixes: creators' histories may be cut",
            unavailable=False,
        )
        return
    ids = list(inputs)
    try:
        answers = services.calls(
            services.creators.GetCreator,
            [cs.GetCreatorRequest(creator_id=c) for c in ids],
            principal=AUDIT,
            service="creator-score",
        )
    except ServiceUnavailable as exc:
        check.skip_for(exc)
        return
    for creator_id, answer in zip(ids, answers, strict=True):
        live, ad_orders = inputs[creator_id]
        if answer is None:
            check.compare(creator_id, inputs[creator_id], None, "creator-score does not know it")
            continue
        check.compare(f"{creator_id} live sessions", live, answer.creator.live.sessions)
        check.compare(f"{creator_id} ad orders", ad_orders, answer.creator.ad_sales.orders)
