"""The combiner's header scan and the settings its child process receives."""

import json

import pytest
from pydantic import SecretStr

from shopstream_platform.child_process import settings_json
from shopstream_platform.combiner import MissingHeadersError, SourceEvent, scan_headers
from shopstream_platform.settings import KafkaSettings, ServiceSettings


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
