"""ensure_topics asks for at most CREATE_GROUP_SIZE topics per CreateTopics request and waits
until every partition of a group has a leader before asking for the next (all registry topics
in one request fenced a freshly started broker under load). The admin client is a stand-in whose
new partitions get their leader one metadata request after they are created."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from shopstream_platform.kafka import admin as kafka_admin
from shopstream_platform.kafka.topics import load_registry
from shopstream_platform.settings import KafkaSettings


class SlowController:
    """create_topics records each request; a new topic's partitions have no leader in the first
    metadata answer after its creation and have one from the second on."""

    def __init__(self, existing: set[str], taken: set[str]) -> None:
        self.partitions = dict.fromkeys(existing, 1)
        self.answers_since_created = dict.fromkeys(existing, 1)
        self.taken = taken  # created by someone else between our listing and our request
        self.requests: list[list[str]] = []
        self.reported_led = set(existing)
        self.asked_before_led: list[str] = []

    def list_topics(self, timeout: float) -> Any:
        topics = {}
        for name, count in self.partitions.items():
            leader = 1 if self.answers_since_created[name] >= 1 else -1
            self.answers_since_created[name] += 1
            if leader >= 0:
                self.reported_led.add(name)
            topics[name] = SimpleNamespace(
                error=None,
                partitions={p: SimpleNamespace(leader=leader, error=None) for p in range(count)},
            )
        return SimpleNamespace(topics=topics)

    def create_topics(
        self, new_topics: list[Any], request_timeout: float
    ) -> dict[str, Future[None]]:
        self.asked_before_led += sorted(set(self.partitions) - self.reported_led)
        self.requests.append([t.topic for t in new_topics])
        answers: dict[str, Future[None]] = {}
        for topic in new_topics:
            answers[topic.topic] = future = Future()
            if topic.topic in self.taken:
                future.set_exception(KafkaException(KafkaError(KafkaError.TOPIC_ALREADY_EXISTS)))
                continue
            self.partitions[topic.topic] = topic.num_partitions
            self.answers_since_created[topic.topic] = 0
            future.set_result(None)
        return answers


@pytest.fixture
def controller(monkeypatch: pytest.MonkeyPatch) -> SlowController:
    fake = SlowController(existing={"commerce.orders.v1"}, taken={"ads.clicks.v1"})
    monkeypatch.setattr(kafka_admin, "admin_client", lambda _: fake)
    monkeypatch.setattr(kafka_admin.time, "sleep", lambda _: None)
    return fake


def test_registry_topics_are_created_in_groups_each_led_before_the_next(
    controller: SlowController,
) -> None:
    specs = load_registry().with_dlqs()
    names = [s.name for s in specs]
    assert len(names) > 2 * kafka_admin.CREATE_GROUP_SIZE, "too few topics to need groups"
    # A topic named twice is asked for once (the last spec of a name counts, as before).
    twice = [*specs, replace(specs[-1], partitions=specs[-1].partitions + 1)]

    created = kafka_admin.ensure_topics(KafkaSettings(), twice)

    missing = [n for n in names if n != "commerce.orders.v1"]
    assert [n for group in controller.requests for n in group] == missing
    assert all(len(g) <= kafka_admin.CREATE_GROUP_SIZE for g in controller.requests)
    assert len(controller.requests) == -(-len(missing) // kafka_admin.CREATE_GROUP_SIZE)
    assert controller.asked_before_led == [], "a group was asked for before the last was led"
    assert created == [n for n in missing if n != "ads.clicks.v1"]
    assert controller.partitions[specs[-1].name] == specs[-1].partitions + 1


def test_nothing_is_asked_for_when_every_topic_exists(controller: SlowController) -> None:
    existing = load_registry().get("commerce.orders.v1")
    assert kafka_admin.ensure_topics(KafkaSettings(), [existing, existing]) == []
    assert controller.requests == []
