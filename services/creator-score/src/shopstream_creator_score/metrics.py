"""Creator-score's own metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shopstream_platform.metrics import NAMESPACE

FRESHNESS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class CreatorScoreMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.inputs = Counter(
            "creator_score_inputs_total",
            "Input events applied to creator state, by source",
            ["source"],
            namespace=NAMESPACE,
            registry=registry,
        )
        self.creators_scored = Counter(
            "creator_score_creators_scored_total",
            "Creators scored: one per creator per input batch record (inputs / this = how much "
            "the combiner's windows compact)",
            namespace=NAMESPACE,
            registry=registry,
        )
        self.score_updates = Counter(
            "creator_score_updates_total",
            "Score changes published on creators.scores.v1",
            namespace=NAMESPACE,
            registry=registry,
        )
        self.freshness = Histogram(
            "creator_score_freshness_seconds",
            "Input event time to score computed",
            namespace=NAMESPACE,
            registry=registry,
            buckets=FRESHNESS_BUCKETS,
        )
        self.creators = Gauge(
            "creator_score_creators",
            "Creators in the search index",
            namespace=NAMESPACE,
            registry=registry,
        )
        self.copied_creators = Gauge(
            "creator_score_copied_creators",
            "Creators of partitions other processes own, copied from the table's changelog "
            "(stream/copies.py)",
            namespace=NAMESPACE,
            registry=registry,
        )
        self.owned_partitions = Gauge(
            "creator_score_owned_partitions",
            "Creators table partitions Faust assigned to this process",
            namespace=NAMESPACE,
            registry=registry,
        )
        self.recovery_seconds = Gauge(
            "creator_score_recovery_seconds",
            "Time to recover tables and rebuild the index at start",
            namespace=NAMESPACE,
            registry=registry,
        )
        self.watchers = Gauge(
            "creator_score_watchers",
            "Open WatchScores streams",
            namespace=NAMESPACE,
            registry=registry,
        )
