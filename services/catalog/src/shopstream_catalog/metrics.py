"""Catalog's own metrics, registered beside the platform's on the service registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from shopstream_platform.metrics import NAMESPACE


class CatalogMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.products_by_status = Gauge(
            "catalog_products",
            "Products by listing status",
            ["status"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.reservations = Counter(
            "catalog_reservations_total",
            "Order reservations by outcome (reserved, rejected, released, released_partially, committed)",
            ["outcome"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.suppressions = Counter(
            "catalog_suppressions_total",
            "Listings suppressed automatically for their refund rate",
            namespace=NAMESPACE,
            registry=registry,
        )
        self.listing_decisions = Counter(
            "catalog_listing_decisions_total",
            "Listing rule outcomes on create/update, by status and first reason code",
            ["status", "reason"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.inbound_units = Counter(
            "catalog_inbound_units_total",
            "Units of inbound shipments to platform warehouses: announced, received, missing "
            "(announced but not received) and extra (received but not announced)",
            ["kind"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.restocked_units = Counter(
            "catalog_restocked_units_total",
            "Returned units that passed inspection and went back on hand",
            namespace=NAMESPACE,
            registry=registry,
        )
        self.storage_fees = Counter(
            "catalog_storage_fees_minor_total",
            "Storage fees charged to sellers for units in platform warehouses, by currency",
            ["currency"],
            namespace=NAMESPACE,
            registry=registry,
        )
