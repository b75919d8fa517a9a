"""One reconcile: read the topics once, recount per domain, ask the services, list mismatches."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from google.protobuf.message import Message

from shopstream_cli.reconcile import ads, commissions, creators, live, orders, sellers, stock
from shopstream_cli.reconcile.report import Report
from shopstream_cli.reconcile.scope import Scope
from shopstream_cli.reconcile.services import Services
from shopstream_cli.reconcile.source import Progress, read_topics
from shopstream_platform.settings import AuthSettings, KafkaSettings

DOMAINS = (orders, sellers, stock, commissions, live, ads, creators)


def topics_read() -> dict[str, dict[str, type[Message]]]:
    """Every topic a recount reads, with the event types it decodes."""
    wanted: dict[str, dict[str, type[Message]]] = {}
    for domain in DOMAINS:
        for topic, types in domain.TOPICS.items():
            wanted.setdefault(topic, {}).update(types)
    return wanted


def reconcile(
    kafka: KafkaSettings,
    auth: AuthSettings,
    addresses: Mapping[str, str],
    scope: Scope,
    *,
    progress: Progress | None = None,
    phase: Callable[[str], None] | None = None,
    timeout_s: float = 10.0,
) -> Report:
    """Recount every covered number from the topics in `scope` and compare it with the services
    at `addresses` (service name -> host:port)."""
    say = phase or (lambda _: None)
    say("reading topics")
    topics = read_topics(kafka, topics_read(), scope.since, progress)
    report = Report(
        scope=scope.describe(),
        records_read=topics.read,
        duplicates=topics.duplicates,
        undecodable=topics.undecodable,
    )
    if topics.missing:
        report.notes.append(f"topics not on the broker: {', '.join(topics.missing)}")
    with Services(addresses, auth, timeout_s) as services:
        say("orders and payments")
        book = orders.recount(topics)
        orders.compare(book, scope, services, report)
        say("sellers")
        sellers.compare(sellers.recount(topics, book, scope), book, services, report)
        say("stock")
        stock.compare(stock.recount(topics, scope), services, report)
        say("commissions")
        commissions.compare(commissions.recount(topics, scope), scope, services, report)
        report.totals["creator_sales"] = commissions.creator_sales(book, scope)
        say("live sessions")
        live.compare(live.recount(topics, book, scope), services, report)
        say("ads")
        ads.compare(ads.recount(topics, scope), book, services, report)
        say("creator inputs")
        creators.compare(creators.recount(topics, scope), scope, services, report)
    return report
