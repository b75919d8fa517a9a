"""The combiner: its header scan, the settings its child process receives, and its wait for the
broker's transaction coordinator at start."""

import json

import pytest
from confluent_kafka import KafkaError, KafkaException
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from shopstream_platform.child_process import settings_json
from shopstream_platform.combiner import (
    INIT_TRANSACTIONS_S,
    Combiner,
    CombinerMetrics,
    MissingHeadersError,
    SourceEvent,
    scan_headers,
)
from shopstream_platform.settings import CombinerSettings, KafkaSettings, ServiceSettings


def test_headers_in_the_platforms_order_and_in_any_other() -> None:
    ordered = [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"e1"),
        ("ce_type", b"t.v1.X"),
        ("ce_source", b"s"),
        ("ce_time", b"2026-12-06T00:00:00Z"),
        ("content-type", b"application/protobuf"),
    ]
    expected = SourceEvent("e1", "t.v1.X", "2026-12-06T00:00:00Z")
    assert scan_headers(ordered) == expected
    assert scan_headers(list(reversed(ordered))) == expected
    assert scan_headers([("ce_type", "t.v1.X"), ("ce_id", "e1")]) == SourceEvent("e1", "t.v1.X", "")


@pytest.mark.parametrize(
    "headers", [None, [], [("ce_id", b"e1")], [("ce_type", b"t"), ("ce_id", None)]]
)
def test_records_without_id_or_type_are_poison(headers: object) -> None:
    with pytest.raises(MissingHeadersError):
        scan_headers(headers)


def test_the_child_gets_the_parents_secrets_in_clear() -> None:
    settings = ServiceSettings(
        kafka=KafkaSettings(sasl_password=SecretStr("s3cret")), database_url="sqlite://"
    )
    raw = settings_json(settings)
    assert json.loads(raw)["kafka"]["sasl_password"] == "s3cret"
    assert ServiceSettings.model_validate(json.loads(raw)) == settings


class _Transactions:
    """A producer whose init_transactions fails with `errors` in turn, then succeeds."""

    def __init__(self, *errors: int) -> None:
        self.errors = list(errors)
        self.calls = 0

    def init_transactions(self, timeout: float) -> None:
        self.calls += 1
        if self.errors:
            raise KafkaException(KafkaError(self.errors.pop(0)))


class _Starting:
    """A combiner whose producer is `_Transactions`, on a clock that only its sleeps move."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *errors: int) -> None:
        self.now = 0.0
        monkeypatch.setattr("shopstream_platform.combiner.time.sleep", self._sleep)
        # The clients are created without connecting; nothing here reaches a broker.
        self.combiner = Combiner(
            kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"),
            settings=CombinerSettings(),
            service="test",
            group_id="g",
            sources=["t"],
            output="o",
            output_type="test.v1.Batch",
            reducer=None,  # type: ignore[arg-type]  # never reached
            metrics=CombinerMetrics(CollectorRegistry(), "test"),
            clock=lambda: self.now,
        )
        self.producer = _Transactions(*errors)
        self.combiner._producer = self.producer  # type: ignore[assignment]

    def _sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_starting_combiner_waits_out_a_coordinator_that_is_not_ready(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    starting = _Starting(monkeypatch, KafkaError.NOT_COORDINATOR, KafkaError._TIMED_OUT)
    starting.combiner._init_transactions()
    assert starting.producer.calls == 3


def test_a_combiner_exits_at_once_on_an_error_that_waiting_cannot_mend(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    starting = _Starting(monkeypatch, KafkaError.INVALID_TRANSACTION_TIMEOUT)
    with pytest.raises(KafkaException):
        starting.combiner._init_transactions()
    assert starting.producer.calls == 1


def test_a_combiner_gives_up_on_the_coordinator_after_its_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    starting = _Starting(monkeypatch, *[KafkaError.NOT_COORDINATOR] * 1_000)
    with pytest.raises(KafkaException):
        starting.combiner._init_transactions()
    assert starting.now >= INIT_TRANSACTIONS_S
