"""Ads' own metrics, registered beside the platform's on the service registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shopstream_platform.metrics import LATENCY_BUCKETS, NAMESPACE

LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class AdsMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str, labels: list[str]) -> Counter:
            return Counter(name, doc, labels, namespace=NAMESPACE, registry=registry)

        self.impressions = counter(
            "ads_impressions_total", "Impressions counted, by placement", ["placement"]
        )
        self.clicks = counter(
            "ads_clicks_total", "Valid clicks counted, by placement", ["placement"]
        )
        self.flagged = counter(
            "ads_flagged_clicks_total", "Clicks flagged as invalid traffic, by reason", ["reason"]
        )
        self.spend = counter(
            "ads_spend_minor_total",
            "Spend charged to campaigns, minor units, by currency",
            ["currency"],
        )
        self.attributions = counter(
            "ads_attributions_total",
            "Orders credited to an ad, by touch (click or view)",
            ["touch"],
        )
        self.attributed_gmv = counter(
            "ads_attributed_gmv_minor_total",
            "Attributed order value (refunds subtracted via the _refunded twin), minor units",
            ["currency"],
        )
        self.attributed_refunds = counter(
            "ads_attributed_refunded_minor_total",
            "Refunded value of attributed orders, minor units",
            ["currency"],
        )
        self.withdrawn = counter(
            "ads_attributions_withdrawn_total",
            "Credits moved to a touch that arrived after the order, by the withdrawn touch",
            ["touch"],
        )
        self.withdrawn_gmv = counter(
            "ads_attributions_withdrawn_gmv_minor_total",
            "Order value of withdrawn credits, minor units (net credited = credited - withdrawn)",
            ["currency"],
        )
        self.unattributed = counter(
            "ads_unattributed_orders_total", "Paid orders with no qualifying touch", []
        )
        self.auctions = counter("ads_auctions_total", "SelectAds auctions run", [])
        self.budget_exhausted = counter(
            "ads_budget_exhausted_total", "Campaign budgets reached, by budget", ["budget"]
        )
        self.lag = Histogram(
            "ads_attribution_lag_seconds",
            "Order paid (event time) to its first attribution published",
            namespace=NAMESPACE,
            registry=registry,
            buckets=LAG_BUCKETS,
        )
        self.auction_seconds = Histogram(
            "ads_auction_seconds",
            "Time to rank and price one SelectAds auction",
            namespace=NAMESPACE,
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self.campaigns = Gauge(
            "ads_campaigns",
            "Campaigns known, by status",
            ["status"],
            namespace=NAMESPACE,
            registry=registry,
        )
