"""The committed AsyncAPI document is current and covers the whole topic registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import json_format, symbol_database

from shopstream_cli import asyncapi
from shopstream_cli.main import run
from shopstream_platform.kafka.topics import load_registry


@pytest.fixture(scope="module")
def text() -> str:
    return asyncapi.generate()


@pytest.fixture(scope="module")
def document(text: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def test_committed_document_is_current(text: str) -> None:
    """The CI check: docs/asyncapi.yaml must equal a fresh generation."""
    committed = asyncapi.DEFAULT_PATH.read_text(encoding="utf-8")
    assert committed == text, "docs/asyncapi.yaml is stale: run make asyncapi"


def test_generation_is_deterministic(text: str) -> None:
    assert asyncapi.generate() == text


def test_every_registry_topic_is_a_channel_with_its_settings(document: dict[str, Any]) -> None:
    channels = document["channels"]
    registry = list(load_registry())
    assert set(channels) == {t.name for t in registry}
    for topic in registry:
        channel = channels[topic.name]
        kafka = channel["bindings"]["kafka"]
        assert channel["address"] == topic.name
        assert kafka["partitions"] == topic.partitions
        assert kafka["topicConfiguration"]["retention.ms"] == topic.retention_ms
        assert kafka["topicConfiguration"]["cleanup.policy"] == [topic.cleanup_policy]
        assert channel["x-owner"] == topic.owner
        assert channel["x-internal"] is topic.internal
        assert channel["x-dlq"]["address"] == f"{topic.name}.dlq"
        assert list(channel["messages"]) == list(topic.values)
        assert f"{topic.name}.send" in document["operations"]


def test_internal_topics_are_marked(document: dict[str, Any]) -> None:
    internal = {t.name for t in load_registry() if t.internal}
    assert internal, "the registry has internal topics"
    for name in internal:
        channel = document["channels"][name]
        assert {"name": "internal"} in channel["tags"]
        assert channel["description"].lower().startswith("internal")


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    refs = _refs(document)
    assert refs
    for ref in refs:
        assert _resolve(document, ref) is not None, ref


def test_messages_carry_cloudevents_headers_and_key(document: dict[str, Any]) -> None:
    headers = document["components"]["schemas"]["CloudEventsHeaders"]
    assert set(headers["required"]) == {
        "ce_specversion",
        "ce_id",
        "ce_type",
        "ce_source",
        "ce_time",
        "content-type",
    }
    for name, message in document["components"]["messages"].items():
        assert message["headers"]["allOf"][1]["properties"]["ce_type"]["const"] == name
        assert message["bindings"]["kafka"]["key"]["type"] == "string"
        example = message["examples"][0]
        assert example["headers"]["ce_type"] == name
        assert set(headers["required"]) <= set(example["headers"])


def test_examples_are_valid_messages(document: dict[str, Any]) -> None:
    """Each example payload parses back into its protobuf message, field for field."""
    for name, message in document["components"]["messages"].items():
        cls = symbol_database.Default().GetSymbol(name)
        payload = message["examples"][0]["payload"]
        parsed = json_format.ParseDict(payload, cls())
        assert parsed.ByteSize() > 0, name
        assert json_format.MessageToDict(parsed, preserving_proto_field_name=True) == payload


def test_schemas_follow_the_descriptors(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    order = schemas["shopstream.commerce.v1.Order"]["properties"]
    assert order["lines"]["type"] == "array"
    assert order["lines"]["items"] == {
        "$ref": "#/components/schemas/shopstream.commerce.v1.OrderLine"
    }
    assert order["state"]["allOf"] == [
        {"$ref": "#/components/schemas/shopstream.commerce.v1.OrderState"}
    ]
    assert order["placed_at"]["format"] == "date-time"
    assert order["version"] == {"type": "string", "format": "int64", "x-protobuf-field-number": 9}
    assert "ORDER_STATE_PAID" in schemas["shopstream.commerce.v1.OrderState"]["enum"]
    attributes = schemas["shopstream.catalog.v1.Product"]["properties"]["attributes"]
    assert attributes["type"] == "object"
    assert attributes["additionalProperties"] == {"type": "string"}


def test_check_reports_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "asyncapi.yaml"
    assert run(["topics", "asyncapi", "--output", str(target), "--check"]) == 1
    assert "missing: run make asyncapi" in capsys.readouterr().err
    assert run(["topics", "asyncapi", "--output", str(target)]) == 0
    assert run(["topics", "asyncapi", "--output", str(target), "--check"]) == 0
    target.write_text(target.read_text() + "# edited by hand\n")
    assert run(["topics", "asyncapi", "--output", str(target), "--check"]) == 1
    assert "is stale: run make asyncapi" in capsys.readouterr().err
