"""Builds the catalog from the platform runtime: use cases, gRPC API, consumers, background tasks."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from shopstream.catalog.v1 import catalog_service_pb2, catalog_service_pb2_grpc
from shopstream_catalog.api.servicer import CatalogServicer
from shopstream_catalog.domain.model import ListingStatus
from shopstream_catalog.events.fulfilment_handlers import (
    COMMERCE_FULFILMENT_TOPIC,
    FulfilmentEventHandlers,
)
from shopstream_catalog.events.order_handlers import ORDERS_TOPIC, OrderEventHandlers
from shopstream_catalog.metrics import CatalogMetrics
from shopstream_catalog.settings import CatalogSettings
from shopstream_catalog.store.tables import products
from shopstream_catalog.usecases.catalog import (
    PRODUCTS_TOPIC,
    SELLERS_TOPIC,
    STOCK_TOPIC,
    CatalogApp,
)
from shopstream_catalog.usecases.fulfilment import FULFILMENT_TOPIC, Fulfilment
from shopstream_catalog.usecases.reservations import Reservations
from shopstream_platform.runtime import Runtime

PUBLISHED_TOPICS = [SELLERS_TOPIC, PRODUCTS_TOPIC, STOCK_TOPIC, FULFILMENT_TOPIC]
GAUGE_INTERVAL_S = 10.0


def wire(runtime: Runtime) -> CatalogApp:
    settings = runtime.settings
    assert isinstance(settings, CatalogSettings)
    metrics = CatalogMetrics(runtime.metrics.registry)
    app = CatalogApp(runtime.db, runtime.outbox, settings, metrics)
    fulfilment = Fulfilment(app)
    runtime.declare_topics([*PUBLISHED_TOPICS, ORDERS_TOPIC, COMMERCE_FULFILMENT_TOPIC])
    runtime.add_grpc_service(
        catalog_service_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name,
        catalog_service_pb2_grpc.add_CatalogServiceServicer_to_server,
        CatalogServicer(app, fulfilment),
    )
    handlers = OrderEventHandlers(Reservations(app), app.cache.invalidate)
    runtime.add_consumer(
        "orders",
        [ORDERS_TOPIC],
        handlers.routes(runtime.inbox("orders")),
        # SQLite "database is locked" and lost PostgreSQL connections are worth a retry.
        transient=(OperationalError,),
    )
    runtime.add_consumer(
        "fulfilment",
        [COMMERCE_FULFILMENT_TOPIC],
        FulfilmentEventHandlers(fulfilment, app.cache.invalidate).routes(
            runtime.inbox("fulfilment")
        ),
        transient=(OperationalError,),
    )

    async def refresh_status_gauge() -> None:
        async with runtime.db.read() as session:
            rows = (
                await session.execute(
                    select(products.c.status, func.count()).group_by(products.c.status)
                )
            ).all()
        counts = {ListingStatus(status): n for status, n in rows}
        for status in ListingStatus:
            metrics.products_by_status.labels(status.name).set(counts.get(status, 0))

    runtime.add_periodic("products-by-status", refresh_status_gauge, every_s=GAUGE_INTERVAL_S)
    # A failed charge is run again: the next charge covers the period since the last one.
    runtime.add_periodic(
        "storage-fees",
        fulfilment.charge_storage,
        every_s=settings.storage_charge_interval_s,
        first_after_s=settings.storage_charge_interval_s,
    )
    return app
