"""Builds commerce from the platform runtime: use cases, gRPC API, consumers, sweeps."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import Message
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream.ads.v1 import ads_events_pb2 as ads
from shopstream.catalog.v1 import events_pb2 as catalog_events
from shopstream.commerce.v1 import commerce_service_pb2, commerce_service_pb2_grpc
from shopstream.creators.v1 import creators_pb2 as creators
from shopstream.social.v1 import live_pb2 as social
from shopstream_commerce.api.servicer import CommerceServicer
from shopstream_commerce.domain.orders import OrderState
from shopstream_commerce.events import catalog_replica
from shopstream_commerce.fulfilment.carrier import SandboxCarrier, SandboxTerms
from shopstream_commerce.metrics import CommerceMetrics
from shopstream_commerce.payments.provider import SandboxProvider
from shopstream_commerce.settings import CommerceSettings
from shopstream_commerce.store.tables import live_sessions, orders
from shopstream_commerce.usecases.after_sales import AfterSales
from shopstream_commerce.usecases.commissions import COMMISSIONS_TOPIC, Commissions
from shopstream_commerce.usecases.context import Deps
from shopstream_commerce.usecases.flash_sales import FlashSales
from shopstream_commerce.usecases.fulfilment import FULFILMENT_TOPIC, Fulfilment
from shopstream_commerce.usecases.leaks import LeakCheck
from shopstream_commerce.usecases.live import LIVE, LIVE_TOPIC, Live
from shopstream_commerce.usecases.orders import ORDERS_TOPIC, PAYMENTS_TOPIC, Orders
from shopstream_commerce.usecases.risk import INVALID_TRAFFIC_TOPIC, SCORES_TOPIC, RiskSignals
from shopstream_commerce.usecases.settlements import SELLER_LEDGER_TOPIC, SellerLedger
from shopstream_commerce.usecases.transitions import OrderTransitions
from shopstream_platform.kafka.events import Event
from shopstream_platform.runtime import Runtime

STOCK_TOPIC = "catalog.stock.v1"
CATALOG_FULFILMENT_TOPIC = "catalog.fulfilment.v1"
SOCIAL_LIVE_TOPIC = "social.live-stats.v1"
GAUGE_INTERVAL_S = 10.0


SessionRoute = Callable[[Event[Message], AsyncSession], Awaitable[None]]


def _from_catalog(source: str) -> Callable[[SessionRoute], SessionRoute]:
    """Only the catalog this commerce works with answers its orders (`catalog_source`, a
    CloudEvents source): on a broker shared by several deployments, another catalog that never
    heard of our SKUs would otherwise reject our orders first. Empty: every answer counts."""

    def only(route: SessionRoute) -> SessionRoute:
        if not source:
            return route

        async def handle(event: Event[Message], session: AsyncSession) -> None:
            if event.meta.source == source:
                await route(event, session)

        return handle

    return only


@dataclass
class Commerce:
    orders: Orders
    after_sales: AfterSales
    live: Live
    commissions: Commissions
    leak_check: LeakCheck
    metrics: CommerceMetrics
    fulfilment: Fulfilment


def wire(runtime: Runtime) -> Commerce:
    settings = runtime.settings
    assert isinstance(settings, CommerceSettings)
    metrics = CommerceMetrics(runtime.metrics.registry)
    deps = Deps(runtime.db, runtime.outbox, settings, metrics)
    risk = RiskSignals(deps)
    commissions = Commissions(runtime.db, runtime.outbox, settings, metrics, risk)
    live = Live(runtime.db, runtime.outbox, metrics, settings)
    leak_check = LeakCheck(deps)
    transitions = OrderTransitions(deps)
    seller_ledger = SellerLedger(deps, transitions)
    flash_sales = FlashSales(deps)
    carrier = SandboxCarrier(
        SandboxTerms(
            pickup_s=settings.carrier_pickup_s,
            transit_s=settings.carrier_transit_s,
            promise_s=settings.carrier_promise_s,
            late_by_s=settings.carrier_late_by_s,
            lost_share=settings.carrier_lost_share,
            late_share=settings.carrier_late_share,
        ),
        deps.now,
    )
    fulfilment = Fulfilment(deps, transitions, carrier, seller_ledger)
    order_cases = Orders(
        deps,
        transitions,
        SandboxProvider(
            settings.payment_timeout_s * 2,
            slow_s=settings.sandbox_slow_s,
            stuck_s=settings.sandbox_stuck_s,
            ledger_path=Path(settings.sandbox_ledger_path)
            if settings.sandbox_ledger_path
            else None,
        ),
        commissions,
        live,
        leak_check,
        seller_ledger,
        flash_sales,
        fulfilment,
    )
    after_sales = AfterSales(
        deps, transitions, order_cases.payments, commissions, seller_ledger, fulfilment
    )
    runtime.declare_topics(
        [
            ORDERS_TOPIC,
            PAYMENTS_TOPIC,
            LIVE_TOPIC,
            COMMISSIONS_TOPIC,
            SELLER_LEDGER_TOPIC,
            FULFILMENT_TOPIC,
            STOCK_TOPIC,
            CATALOG_FULFILMENT_TOPIC,
            SOCIAL_LIVE_TOPIC,
        ]
    )
    runtime.add_grpc_service(
        commerce_service_pb2.DESCRIPTOR.services_by_name["CommerceService"].full_name,
        commerce_service_pb2_grpc.add_CommerceServiceServicer_to_server,
        CommerceServicer(
            order_cases,
            after_sales,
            live,
            commissions,
            leak_check,
            seller_ledger,
            flash_sales,
            fulfilment,
        ),
    )
    transient = (OperationalError,)
    trusted = _from_catalog(settings.catalog_source)

    async def released(event: Event[Message], session: AsyncSession) -> None:
        # The hold (day-end check) and the packages (units refunded before shipping).
        await leak_check.on_stock_ended(event, session)
        assert isinstance(event.message, catalog_events.StockReleased)
        await fulfilment.on_stock_released(session, event.message)

    runtime.add_consumer(
        "stock",
        [STOCK_TOPIC],
        runtime.deduplicated(
            "stock",
            {
                catalog_events.StockReserved: trusted(order_cases.on_stock_answer),
                catalog_events.StockReservationRejected: trusted(order_cases.on_stock_answer),
                catalog_events.StockReleased: trusted(released),
                catalog_events.StockCommitted: trusted(leak_check.on_stock_ended),
            },
        ),
        transient=transient,
    )
    runtime.add_consumer(
        "catalog",
        [catalog_replica.PRODUCTS_TOPIC],
        runtime.deduplicated("catalog", catalog_replica.ROUTES),
        transient=transient,
    )
    runtime.add_consumer(
        "fulfilment",
        [CATALOG_FULFILMENT_TOPIC],
        runtime.deduplicated(
            "fulfilment", {catalog_events.StorageCharged: seller_ledger.on_storage_charged}
        ),
        transient=transient,
    )
    runtime.add_consumer(
        "risk",
        [SCORES_TOPIC, INVALID_TRAFFIC_TOPIC],
        runtime.deduplicated(
            "risk",
            {
                creators.CreatorScoreChanged: risk.on_score_changed,
                ads.InvalidTrafficFlagged: risk.on_invalid_click,
            },
        ),
        transient=transient,
    )
    runtime.add_consumer(
        "social",
        [SOCIAL_LIVE_TOPIC],
        runtime.deduplicated("social", {social.LiveViewStats: live.on_view_stats}),
        transient=transient,
    )

    async def sweeps() -> None:
        await order_cases.expire_due()
        # Requests the seller left unanswered past their deadline: approved by the platform.
        await after_sales.approve_unanswered()
        # Delivered orders whose after-sales window closed: COMPLETED, commissions settle.
        await after_sales.complete_due()
        # Open payment intents (time-out, crash) and refunds the provider has not confirmed.
        await order_cases.payments.sweep()
        # The platform ships its packages of paid orders; the carrier's news of every parcel.
        await fulfilment.ship_platform_due()
        await fulfilment.track_due()

    async def gauges() -> None:
        async with runtime.db.read() as session:
            rows = (
                await session.execute(select(orders.c.state, func.count()).group_by(orders.c.state))
            ).all()
            live_now = (
                await session.execute(
                    select(func.count())
                    .select_from(live_sessions)
                    .where(live_sessions.c.state == LIVE)
                )
            ).scalar_one()
        counts: dict[int, int] = {int(state): int(n) for state, n in rows}
        for state in OrderState:
            metrics.orders_by_state.labels(state.name).set(counts.get(int(state), 0))
        metrics.live_sessions.set(live_now)

    # The sweeps' work is idempotent: a run that failed is picked up by the next.
    runtime.add_periodic("sweeps", sweeps, every_s=settings.sweep_interval_s)
    runtime.add_periodic("gauges", gauges, every_s=GAUGE_INTERVAL_S)
    runtime.add_periodic(
        "day-end-check", leak_check.refresh, every_s=settings.leak_check_interval_s
    )
    return Commerce(order_cases, after_sales, live, commissions, leak_check, metrics, fulfilment)
