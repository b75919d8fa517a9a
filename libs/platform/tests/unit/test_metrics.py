"""Every service's registry exports the process and Python series and which build is running."""

import os

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from shopstream_platform.metrics import REVISION_ENV, PlatformMetrics, service_version


def _samples(metrics: PlatformMetrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = generate_latest(metrics.registry).decode()
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def test_process_and_python_series_are_on_the_service_registry() -> None:
    samples = _samples(PlatformMetrics("catalog"))
    for name in (
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
        "python_info",
        "python_gc_collections_total",
    ):
        assert name in samples, name
    [(labels, _)] = samples["process_resident_memory_bytes"]
    assert samples["process_resident_memory_bytes"][0][1] > 0 and labels == {}


def test_build_info_names_service_version_revision_and_python(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(REVISION_ENV, "abc1234")
    [(labels, value)] = _samples(PlatformMetrics("catalog"))["shopstream_build_info"]
    assert value == 1
    assert labels["service"] == "catalog"
    assert labels["version"] == service_version("catalog") == "0.1.0"
    assert labels["revision"] == "abc1234"
    assert labels["python"].startswith("3.")
    monkeypatch.delenv(REVISION_ENV)
    [(labels, _)] = _samples(PlatformMetrics("no-such-service"))["shopstream_build_info"]
    assert labels["revision"] == "unknown" and labels["version"] == service_version("platform")
    assert os.environ.get(REVISION_ENV) is None


STATS = """{"name": "p#producer-1", "type": "producer", "msg_cnt": 42, "msg_size": 10752,
 "brokers": {
   "127.0.0.1:9092/bootstrap": {"nodeid": -1, "rtt": {"avg": 0}},
   "127.0.0.1:9092/1": {"nodeid": 1, "rtt": {"avg": 2500, "p99": 9000}}
 }}"""


def test_librdkafka_statistics_set_queue_and_round_trip_gauges() -> None:
    from shopstream_platform.metrics import observe_kafka_statistics

    metrics = PlatformMetrics("ads")
    observe_kafka_statistics(metrics, STATS)
    samples = _samples(metrics)
    assert samples["shopstream_kafka_producer_queue_messages"] == [({"service": "ads"}, 42)]
    assert samples["shopstream_kafka_producer_queue_bytes"] == [({"service": "ads"}, 10752)]
    assert samples["shopstream_kafka_broker_rtt_seconds"] == [
        ({"service": "ads", "broker": "1"}, 0.0025)
    ]
    observe_kafka_statistics(metrics, "not json")  # logged, never raised into the poll thread
