"""The verdict of one fault scenario: what was injected, and the lost / duplicated / mismatched
counts, from three independent sources:

- `shopstream reconcile` over the run's records (every number the services answer against its
  recount from the topics): its mismatches are `mismatched`;
- the simulator's ledger (what the services and Kafka acknowledged to it) against the topics and
  the services: an order placed but not on commerce.orders.v1, an impression acknowledged but
  not in ads' exact reports, net GMV commerce did not count, are `lost` (more than
  acknowledged: `duplicated`);
- the topics themselves: a record repeated under one `ce_id` (a re-send; subscribers drop it,
  docs/subscribing.md), and an order placed or paid twice under two ids (which nobody could
  drop) are `duplicated`.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import grpc
from faults_stack import Stack

from shopstream.ads.v1 import ads_pb2, ads_service_pb2, ads_service_pb2_grpc
from shopstream.commerce.v1 import order_events_pb2 as ev
from shopstream_cli.reconcile import Report
from shopstream_cli.reconcile.source import read_topics
from shopstream_platform.grpc.auth import TokenCodec
from shopstream_platform.settings import AuthSettings, KafkaSettings
from shopstream_simulator.clients import AUDIT
from shopstream_simulator.ledger import Summary
from shopstream_simulator.main import reconcile_run
from shopstream_simulator.monitor import Telemetry

ORDERS = "commerce.orders.v1"
IMPRESSIONS = "ads.impressions.v1"
# The simulator's own records (its idempotent producer, no application retry): any record
# repeated under one ce_id there is a producer that wrote one send twice.
EDGE_TOPICS = (
    "ads.impressions.v1",
    "ads.clicks.v1",
    "social.creator-profiles.v1",
    "social.content-stats.v1",
    "social.live-stats.v1",
)
_ONCE_PER_ORDER = (ev.OrderPlaced, ev.OrderPaid)
# How long the simulator's ledger may take to agree with a stream worker restarted after a fault.
RECOMPARE_S = 120.0


@dataclass
class Verdict:
    scenario: str
    injected: list[str]
    events: int = 0
    wall_s: float = 0.0
    lost: dict[str, int] = field(default_factory=dict)
    duplicated: dict[str, int] = field(default_factory=dict)
    mismatched: list[dict[str, Any]] = field(default_factory=list)
    compared: int = 0
    # Records sent again under the same ce_id (at-least-once re-sends, dropped by subscribers).
    resent: dict[str, int] = field(default_factory=dict)
    restarts: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # The simulator's order counts (placed, paid, refunded, ...).
    orders: dict[str, int] = field(default_factory=dict)
    # Checks reconcile could not make because a service did not answer.
    unanswered: list[str] = field(default_factory=list)

    @property
    def lost_total(self) -> int:
        return sum(self.lost.values())

    @property
    def duplicated_total(self) -> int:
        return sum(self.duplicated.values())

    def show(self) -> str:
        lines = [
            f"== {self.scenario}: {self.events:,} events in {self.wall_s:.0f} s "
            f"(orders: {self.orders or 'none'})"
        ]
        lines += [f"   injected: {i}" for i in self.injected]
        lines.append(
            f"   lost {self.lost_total}, duplicated {self.duplicated_total}, "
            f"mismatched {len(self.mismatched)} ({self.compared:,} quantities compared)"
        )
        lines.append(f"   lost by kind: {self.lost}; duplicated by kind: {self.duplicated}")
        lines.append(
            f"   re-sent under the same ce_id (dropped by subscribers): {self.resent or 0}"
        )
        lines.append(f"   service exits restarted by the supervisor: {self.restarts or 'none'}")
        lines += [f"   mismatch: {m}" for m in self.mismatched[:20]]
        lines += [f"   not answered: {u}" for u in self.unanswered]
        lines += [f"   note: {n}" for n in self.notes]
        return "\n".join(lines)


def _orders_on_topic(kafka: KafkaSettings, since: datetime) -> tuple[dict[str, Counter[str]], int]:
    """Per order id, how many distinct events of each once-per-order type the topic holds (after
    dropping re-sends by ce_id), and how many re-sends were dropped."""
    types = {cls.DESCRIPTOR.full_name: cls for cls in _ONCE_PER_ORDER}
    topics = read_topics(kafka, {ORDERS: types}, since)
    per_order: dict[str, Counter[str]] = {}
    for record in topics.of(ORDERS):
        per_order.setdefault(record.key, Counter())[record.ce_type.rsplit(".", 1)[-1]] += 1
    return per_order, topics.duplicates


async def _impressions(stack: Stack, auth: AuthSettings, campaigns: list[str]) -> int | None:
    """The impressions ads counted for these campaigns (its exact reports, as `service:audit`),
    None when it does not answer."""
    token = TokenCodec(auth).mint(*AUDIT)
    metadata = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(stack.targets.grpc["ads"]) as channel:
        stub = ads_service_pb2_grpc.AdsServiceStub(channel)
        total = 0
        for campaign_id in campaigns:
            try:
                answer = await stub.GetCampaignReport(
                    ads_service_pb2.GetCampaignReportRequest(campaign_id=campaign_id),
                    metadata=metadata,
                    timeout=10,
                )
            except grpc.aio.AioRpcError:
                return None
            total += answer.total.impressions
    return total


def _impressions_on_topic(kafka: KafkaSettings, since: datetime, campaigns: set[str]) -> int:
    """Distinct impressions of these campaigns on ads.impressions.v1 since `since`."""
    found = read_topics(
        kafka, {IMPRESSIONS: {ads_pb2.Impression.DESCRIPTOR.full_name: ads_pb2.Impression}}, since
    )
    return len(
        {
            r.message.impression_id
            for r in found.of(IMPRESSIONS)
            if r.message.campaign_id in campaigns
        }
    )


def _edge_resent(kafka: KafkaSettings, since: datetime) -> dict[str, int]:
    """Records of the simulator's topics repeated under one ce_id, per topic."""
    out = {}
    for topic in EDGE_TOPICS:
        found = read_topics(kafka, {topic: {"*": ev.OrderPlaced}}, since)
        if found.duplicates:
            out[topic] = found.duplicates
    return out


async def judge(
    scenario: str,
    injected: list[str],
    *,
    kafka: KafkaSettings,
    auth: AuthSettings,
    stack: Stack,
    summary: Summary,
    telemetry: Telemetry,
    since_monotonic: float,
    exactly_once_edge: bool = True,
) -> Verdict:
    """Wait for the outboxes to drain and every service to serve, then recount and compare."""
    ledger = telemetry.ledger
    verdict = Verdict(
        scenario,
        injected,
        events=summary.events,
        wall_s=summary.wall_s,
        orders=dict(summary.orders),
    )
    await stack.all_serving()
    dead = await stack.outboxes_drained()
    verdict.lost.update({f"outbox_dead_letters.{n}": d for n, d in dead.items() if d})
    started = datetime.fromisoformat(summary.started_at)

    report: Report
    report, attempts = await asyncio.to_thread(
        reconcile_run, kafka, auth, stack.targets.grpc, summary.run_id, started
    )
    verdict.compared = report.compared
    verdict.mismatched = [m.to_dict() for m in report.mismatches]
    verdict.unanswered = [f"{c.name}: {c.skipped}" for c in report.unanswered]
    if attempts > 1:
        verdict.notes.append(
            f"reconcile recounted {attempts} times (the services were catching up)"
        )
    if report.duplicates:
        verdict.resent["reconciled topics"] = report.duplicates

    per_order, _ = await asyncio.to_thread(_orders_on_topic, kafka, started)
    missing = sorted(ledger.placed_order_ids - set(per_order))
    verdict.lost["orders placed, not on commerce.orders.v1"] = len(missing)
    if missing:
        verdict.notes.append(f"orders acknowledged but never published: {missing[:10]}")
    for kind in ("OrderPlaced", "OrderPaid"):
        twice = [o for o, c in per_order.items() if c[kind] > 1]
        verdict.duplicated[f"orders with two {kind} ids"] = len(twice)
        if twice:
            verdict.notes.append(f"{kind} under two ids: {twice[:10]}")
    # The simulator's producer is idempotent and never re-sends by itself: a record on a topic
    # twice under one ce_id is the producer writing one send twice. Across a leader change that
    # must not happen (`exactly_once_edge`). Across an outage longer than the delivery timeout it
    # did (1,178 records after a 232 s quorum loss; docs/reliability.md): subscribers absorb it
    # by ce_id, so there it is reported, not counted as duplicated.
    edge = await asyncio.to_thread(_edge_resent, kafka, started)
    if exactly_once_edge:
        verdict.duplicated["simulator records written twice (one ce_id)"] = sum(edge.values())
    verdict.resent.update({f"simulator {topic}": n for topic, n in edge.items()})

    verdict.restarts = stack.restarts_since(since_monotonic)
    # Impressions: what Kafka acknowledged to the simulator, what the topic holds, and what ads
    # counted (its exact reports), for this run's campaigns. An impression the producer reported
    # failed may still be on the topic (a request that timed out in flight can be written,
    # librdkafka's INTRODUCTION.md): that is not a loss, and ads rightly counts it.
    campaigns = sorted(telemetry.context.campaigns) if telemetry.context is not None else []
    if campaigns:
        acknowledged = sum(ledger.served[c] for c in campaigns)
        on_topic = await asyncio.to_thread(_impressions_on_topic, kafka, started, set(campaigns))
        # A restarted stream worker may still be catching up: until it agrees, for a while.
        deadline = time.monotonic() + RECOMPARE_S
        while True:
            counted = await _impressions(stack, auth, campaigns)
            if counted == on_topic or time.monotonic() > deadline:
                break
            await asyncio.sleep(2.0)
        verdict.lost["impressions acknowledged, not on the topic"] = max(0, acknowledged - on_topic)
        if counted is None:
            verdict.unanswered.append("ads did not answer GetCampaignReport")
        else:
            verdict.lost["impressions on the topic, not counted by ads"] = max(
                0, on_topic - counted
            )
            verdict.duplicated["impressions counted twice by ads"] = max(0, counted - on_topic)
        if on_topic > acknowledged:
            verdict.notes.append(
                f"{on_topic - acknowledged} impressions on the topic whose delivery the simulator "
                "saw fail (written, then reported timed out)"
            )
    # Net GMV against commerce's counters (the simulator compared them at its end).
    for name, pair in summary.reconciled.items():
        if not name.startswith("net_minor.") or not isinstance(pair, dict):
            continue
        if stack.restarted_since("commerce", since_monotonic):
            # Prometheus counters start from 0 in a restarted process: the change over the run
            # no longer says what commerce counted (reconcile's sellers.paid_gmv and
            # totals.paid_gmv compare the same money through the API instead).
            verdict.notes.append(f"{name} not compared: commerce restarted ({pair})")
            continue
        acknowledged, counted = pair["simulator"], pair["service"]
        if counted is None:
            verdict.unanswered.append(f"{name}: commerce's metrics did not answer")
            continue
        verdict.lost[name] = max(0, acknowledged - counted)
        verdict.duplicated[name] = max(0, counted - acknowledged)
    verdict.notes += [
        f"{n} exited during start-up with {s.start_failures} and was started again"
        for n, s in stack.services.items()
        if s.start_failures
    ]
    undelivered = [w for w in summary.warnings if "never acknowledged" in w]
    verdict.notes += undelivered
    return verdict


def now() -> float:
    return time.monotonic()
