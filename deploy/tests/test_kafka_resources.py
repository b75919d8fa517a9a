"""The generated KafkaTopics are exactly the topic registry, and each KafkaUser writes only its own.

The expectations are computed here from protos/topics.yaml and the platform's TopicSpec (the same
code the services create topics with), not from the generator's output.
"""

from __future__ import annotations

import re

import pytest
import yaml
from deploy_support import K8S, REPO, SERVICES, Service, gen_kafka

from shopstream_platform.kafka.topics import TopicRegistry, parse_registry

KAFKA_DIR = K8S / "base" / "kafka"
HEARTBEATS = "platform.heartbeats.v1"


@pytest.fixture(scope="module")
def registry() -> TopicRegistry:
    return parse_registry(yaml.safe_load((REPO / "protos" / "topics.yaml").read_text()))


def committed(name: str) -> list[dict[str, object]]:
    return [d for d in yaml.safe_load_all((KAFKA_DIR / name).read_text()) if d]


def test_the_generated_files_are_current() -> None:
    """Fails after a topics.yaml change until `uv run python deploy/k8s/gen_kafka.py` is run."""
    assert gen_kafka().main(["--check"]) == 0


def test_one_kafka_topic_per_registry_entry_and_dead_letter_twin(registry: TopicRegistry) -> None:
    expected = {}
    for spec in registry.with_dlqs():
        expected[spec.name] = {
            "topicName": spec.name,
            "partitions": spec.partitions,
            "replicas": spec.replication_factor or 3,
            "config": {
                "retention.ms": spec.retention_ms,
                "cleanup.policy": spec.cleanup_policy,
                "min.insync.replicas": spec.min_insync_replicas or 2,
            },
        }
    topics = committed("topics.yaml")
    assert all(t["kind"] == "KafkaTopic" for t in topics)
    actual = {t["metadata"]["name"]: t["spec"] for t in topics}  # type: ignore[index]
    assert len(actual) == len(topics), "a topic appears twice"
    assert actual == expected
    assert len(actual) == 2 * len(registry)


def users() -> dict[str, dict[str, set[str]]]:
    """Per KafkaUser: operation -> literal topic names it is allowed."""
    result: dict[str, dict[str, set[str]]] = {}
    for user in committed("users.yaml"):
        allowed: dict[str, set[str]] = {}
        for acl in user["spec"]["authorization"]["acls"]:  # type: ignore[index]
            resource = acl["resource"]
            if resource["type"] == "topic" and resource["patternType"] == "literal":
                for op in acl["operations"]:
                    allowed.setdefault(op, set()).add(resource["name"])
        result[user["metadata"]["name"]] = allowed  # type: ignore[index]
    return result


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_a_service_writes_only_its_own_topics(registry: TopicRegistry, svc: Service) -> None:
    writes = users()[svc.name]["Write"]
    owned = {s.name for s in registry if s.owner == svc.name}
    assert owned, f"the registry names no topic owned by {svc.name}"
    public = {s.name for s in registry}
    # Its own topics and the heartbeats; every other write is a dead-letter twin of what it reads.
    assert writes & public == owned | {HEARTBEATS}
    reads = users()[svc.name]["Read"]
    assert writes - public == {registry.get(t).dlq.name for t in reads}


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_a_service_may_use_every_topic_its_code_names(
    registry: TopicRegistry, svc: Service
) -> None:
    """READS in gen_kafka.py is kept in step with the code: a topic a service's source names is
    one it reads or owns (then its ACLs let it describe, read or write it)."""
    source = REPO / "services" / svc.name / "src"
    names = {s.name for s in registry}
    used = set()
    for path in source.rglob("*.py"):
        used |= set(re.findall(r"[\"']([a-z]+\.[a-z-]+\.v1)[\"']", path.read_text())) & names
    allowed = users()[svc.name]
    assert used, f"no registry topic found in {source}"
    assert used - allowed["Read"] - allowed["Write"] == set()
    assert used <= allowed["Describe"]


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_a_service_can_describe_every_topic_it_declares(svc: Service) -> None:
    """The runtime lists its topics and their dead-letter twins before serving and creates those
    it cannot see: an undescribable one would be a failed create (no Create ACL)."""
    allowed = users()[svc.name]
    for topic in allowed["Read"] | allowed["Write"]:
        if not topic.endswith(".dlq"):
            assert {topic, topic + ".dlq"} <= allowed["Describe"], topic
