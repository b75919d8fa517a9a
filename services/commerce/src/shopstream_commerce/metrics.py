"""Commerce's own metrics, registered beside the platform's on the service registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shopstream_platform.metrics import LATENCY_BUCKETS, NAMESPACE


class CommerceMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str, labels: list[str]) -> Counter:
            return Counter(name, doc, labels, namespace=NAMESPACE, registry=registry)

        self.orders = counter(
            "commerce_order_transitions_total",
            "Order state transitions, by the state entered",
            ["state"],
        )
        self.gmv = counter(
            "commerce_gmv_minor_total", "Paid order value in minor units, by currency", ["currency"]
        )
        self.refunded = counter(
            "commerce_refunded_minor_total",
            "Refunded value in minor units, by currency",
            ["currency"],
        )
        self.refunds = counter("commerce_refunds_total", "Refunds approved", [])
        self.packages = counter(
            "commerce_package_transitions_total",
            "Package state changes, by the state entered",
            ["state"],
        )
        self.deliveries = counter(
            "commerce_package_outcomes_total",
            "Packages that ended their journey, by warehouse and outcome (on_time, late, lost)",
            ["warehouse", "outcome"],
        )
        self.returns_inspected = counter(
            "commerce_returned_units_inspected_total",
            "Returned units inspected at a warehouse, by disposition (RESTOCK, WRITE_OFF)",
            ["disposition"],
        )
        self.after_sales = counter(
            "commerce_after_sales_total",
            "After-sales requests entering a state, by type (REFUND, RETURN_AND_REFUND, CANCEL)",
            ["type", "state"],
        )
        self.auto_approved = counter(
            "commerce_after_sales_auto_approved_total",
            "After-sales requests the platform approved because the seller did not answer in "
            "time, by type",
            ["type"],
        )
        self.payments = counter(
            "commerce_payments_total", "Payment attempts, by outcome", ["status"]
        )
        self.unpayable_charges = Counter(
            "commerce_unpayable_charges_total",
            "Provider charges for orders that could no longer be paid (refunded automatically)",
            [],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.charges_found_by_cancel = Counter(
            "commerce_charges_found_by_cancel_total",
            "Charges the provider made after answering 'no such charge', found when the sweeper "
            "cancelled the intent (each ends in a paid order or a refund)",
            [],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.provider_refunds = counter(
            "commerce_provider_refunds_total", "Refunds the provider confirmed, by cause", ["cause"]
        )
        self.intents_resolved = counter(
            "commerce_payment_intents_resolved_total",
            "Payment intents left open (time-out, crash) that the sweeper resolved, by outcome",
            ["state"],
        )
        self.live_gmv = counter(
            "commerce_live_gmv_minor_total",
            "Paid value attributed to live sessions, by currency",
            ["currency"],
        )
        self.flash_claims = counter(
            "commerce_flash_sale_units_total",
            "Flash sale units claimed by placed orders, and orders refused (sold_out, buyer_limit)",
            ["outcome"],
        )
        self.frozen_commissions = counter(
            "commerce_frozen_commission_minor_total",
            "Commission held by risk control at settlement instead of paid out, by currency",
            ["currency"],
        )
        self.seller_entries = counter(
            "commerce_seller_ledger_entries_total", "Seller ledger entries, by kind", ["kind"]
        )
        self.commissions = counter(
            "commerce_commission_entries_total", "Commission ledger entries, by kind", ["kind"]
        )
        self.saga_step = Histogram(
            "commerce_saga_step_seconds",
            "Time between saga steps (placed→reserved/rejected, reserved→paid, paid→shipped)",
            ["step"],
            namespace=NAMESPACE,
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self.orders_by_state = Gauge(
            "commerce_orders_in_state",
            "Orders by current state",
            ["state"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.leaked_reservations = Gauge(
            "commerce_leaked_reservations",
            "Orders whose stock catalog still holds although they can no longer ship (day-end check)",
            [],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.overdue_intents = Gauge(
            "commerce_overdue_payment_intents",
            "Payment intents still open well past the sweeper's resolve time (day-end check)",
            [],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.unconfirmed_refunds = Gauge(
            "commerce_unconfirmed_provider_refunds",
            "Refunds at the provider not confirmed: pending past the grace, or refused (day-end check)",
            ["state"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.live_sessions = Gauge(
            "commerce_live_sessions",
            "Live sessions currently live",
            [],
            namespace=NAMESPACE,
            registry=registry,
        )
