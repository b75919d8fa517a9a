"""Prometheus metrics shared by every service, and the /metrics endpoint.

Names follow Prometheus conventions (`*_total` counters, `*_seconds` histograms) and carry the
`shopstream_` namespace; `service` is a label so one dashboard serves all four services.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import platform
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

NAMESPACE = "shopstream"
log = logging.getLogger(__name__)
# The commit a build came from: set by the image build or `shopstream up`; "unknown" otherwise.
REVISION_ENV = "SHOPSTREAM_BUILD_REVISION"

# Latency buckets from 0.5 ms: GetProduct's target p99 is 5 ms, so the low end must be fine.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


@dataclass
class PlatformMetrics:
    """The plumbing's metrics, registered once per process on an explicit registry."""

    service: str
    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )

    def __post_init__(self) -> None:
        r = self.registry
        # The standard process_* (CPU, memory, open fds, start time) and python_* (version, GC)
        # series, on this registry rather than the library's global one.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.build_info = Gauge(
            "build_info",
            "Always 1; the labels say which build is running",
            ["service", "version", "revision", "python"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.build_info.labels(
            self.service,
            service_version(self.service),
            os.environ.get(REVISION_ENV, "unknown"),
            platform.python_version(),
        ).set(1)
        self.rpc_requests = Counter(
            "rpc_requests_total",
            "gRPC requests handled, by method and status code",
            ["service", "method", "code"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.rpc_duration = Histogram(
            "rpc_duration_seconds",
            "gRPC handling time, by method",
            ["service", "method"],
            namespace=NAMESPACE,
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.events_produced = Counter(
            "events_produced_total",
            "Records acknowledged by Kafka, by topic and outcome",
            ["service", "topic", "outcome"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.events_consumed = Counter(
            "events_consumed_total",
            "Records consumed, by topic, group and outcome (processed, duplicate, dead_lettered)",
            ["service", "topic", "group", "outcome"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.event_handling = Histogram(
            "event_handling_seconds",
            "Time to handle one consumed record, retries included",
            ["service", "topic", "group"],
            namespace=NAMESPACE,
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.handler_retries = Counter(
            "event_handler_retries_total",
            "Transient handler failures that were retried",
            ["service", "topic", "group"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.dlq_records = Counter(
            "dlq_records_total",
            "Records sent to a dead-letter topic, by source topic and error",
            ["service", "topic", "error_type"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.consumer_lag = Gauge(
            "consumer_lag_records",
            "High watermark minus position, per assigned partition",
            ["service", "topic", "partition", "group"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.outbox_pending = Gauge(
            "outbox_pending_records",
            "Outbox rows not yet acknowledged by Kafka",
            ["service"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.outbox_relayed = Counter(
            "outbox_relayed_total",
            "Outbox rows published and acknowledged",
            ["service", "topic"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.outbox_dead_lettered = Counter(
            "outbox_dead_lettered_total",
            "Outbox rows that can never be published, moved to outbox_dead_letters, by reason",
            ["service", "topic", "reason"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.outbox_oldest_pending_age = Gauge(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest outbox row not yet acknowledged (0 when the outbox is empty)",
            ["service"],
            namespace=NAMESPACE,
            registry=r,
        )
        # From librdkafka's own statistics (every STATS_INTERVAL_MS): what Python cannot see.
        self.producer_queue_messages = Gauge(
            "kafka_producer_queue_messages",
            "Records waiting in the producer's queue (librdkafka msg_cnt): not yet acknowledged",
            ["service"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.producer_queue_bytes = Gauge(
            "kafka_producer_queue_bytes",
            "Bytes of the records waiting in the producer's queue (librdkafka msg_size)",
            ["service"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.broker_rtt = Gauge(
            "kafka_broker_rtt_seconds",
            "Average request round trip to each broker over the last statistics window",
            ["service", "broker"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.ready = Gauge(
            "ready",
            "1 while the service reports SERVING on its health endpoint",
            ["service"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.unhealthy = Gauge(
            "unhealthy",
            "1 while a health check fails (the service reports NOT_SERVING meanwhile), by check",
            ["service", "check"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.child_restarts = Counter(
            "child_restarts_total",
            "Child processes (e.g. a stream worker's combiner) restarted after they exited",
            ["service", "child"],
            namespace=NAMESPACE,
            registry=r,
        )
        self.periodic_failures = Counter(
            "periodic_failures_total",
            "Failed runs of a periodic background step (retried, never fatal), by task and kind "
            "(transient: retried with back-off; other: run again at the next interval)",
            ["service", "task", "kind"],
            namespace=NAMESPACE,
            registry=r,
        )


def observe_kafka_statistics(metrics: PlatformMetrics, stats_json: str) -> None:
    """Set the librdkafka-statistics gauges from one `stats_cb` report (never raises: it runs in
    the producer's poll thread, which an exception would end)."""
    try:
        stats = json.loads(stats_json)
        _observe(metrics, stats)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        log.warning("unreadable librdkafka statistics: %s", exc)


def _observe(metrics: PlatformMetrics, stats: dict[str, Any]) -> None:
    service = metrics.service
    metrics.producer_queue_messages.labels(service).set(stats.get("msg_cnt", 0))
    metrics.producer_queue_bytes.labels(service).set(stats.get("msg_size", 0))
    for broker in stats.get("brokers", {}).values():
        if broker.get("nodeid", -1) < 0:
            continue  # the bootstrap entry, not a broker of the cluster
        rtt_us = broker.get("rtt", {}).get("avg", 0)
        metrics.broker_rtt.labels(service, str(broker["nodeid"])).set(rtt_us / 1_000_000)


def service_version(service: str) -> str:
    """The installed version of the service's package (shopstream-<service>), else the platform's."""
    for package in (f"shopstream-{service}", "shopstream-platform"):
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "unknown"


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> WSGIServer:
    """Expose /metrics on a background thread; `.server_port` is the bound port (for port=0)."""
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server


class ChildMetrics:
    """The series a child process serves on its own port (a stream worker's combiner runs apart,
    with its own registry), re-exposed on the service's registry at scrape time, so one scrape
    target per service still shows everything it runs. Nothing while the child is down."""

    def __init__(self, url: str, timeout_s: float = 1.0) -> None:
        self._url = url
        self._timeout_s = timeout_s

    def collect(self) -> Iterator[Metric]:
        try:
            with urllib.request.urlopen(self._url, timeout=self._timeout_s) as reply:
                text = reply.read().decode()
        except OSError:
            return
        for family in text_string_to_metric_families(text):
            # The child's own process_* and python_* series would collide with the service's.
            if family.name.startswith(("process_", "python_")):
                continue
            yield family
