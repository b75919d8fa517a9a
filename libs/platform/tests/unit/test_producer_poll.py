"""The producer's poll thread outlives an exception from poll: it serves every delivery report."""

import threading
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from shopstream_platform.kafka import producer as producer_module
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.settings import KafkaSettings


class _Failing:
    """A client whose first poll raises a fatal error, as librdkafka's does after one."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.polls = 0
        self.polled_again = threading.Event()

    def poll(self, timeout: float) -> int:
        self.polls += 1
        if self.polls == 1:
            raise KafkaException(KafkaError(KafkaError._FATAL, fatal=True))
        self.polled_again.set()
        return 0

    def flush(self, timeout: float = 0) -> int:
        return 0


def test_the_poll_thread_goes_on_after_poll_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(producer_module, "Producer", _Failing)
    producer = EventProducer(KafkaSettings(bootstrap_servers="127.0.0.1:1"), "test")
    client: Any = producer._producer
    assert client.polled_again.wait(5), "the poll thread ended at the first exception"
    assert producer._poller.is_alive()
    producer._closing.set()
    producer._poller.join(5)
