from datetime import UTC, datetime

import pytest

from shopstream_platform.kafka.cloudevents import (
    CloudEventMeta,
    MissingHeaderError,
    headers_dict,
    parse_meta,
)


def test_headers_round_trip() -> None:
    meta = CloudEventMeta(
        id="e1",
        type="shopstream.platform.v1.Heartbeat",
        source="shopstream/test",
        time=datetime(2026, 11, 25, 8, 0, 1, 123456, tzinfo=UTC),
        traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01",
        subject="k1",
    )
    headers = headers_dict(meta.to_headers())
    assert headers["ce_specversion"] == "1.0"
    assert headers["content-type"] == "application/protobuf"
    assert headers["ce_time"] == "2026-11-25T08:00:01.123456Z"
    assert parse_meta(headers) == meta


@pytest.mark.parametrize("missing", ["ce_id", "ce_type", "ce_source"])
def test_missing_required_header_is_rejected(missing: str) -> None:
    headers = {"ce_id": "1", "ce_type": "t", "ce_source": "s"}
    del headers[missing]
    with pytest.raises(MissingHeaderError, match=missing):
        parse_meta(headers)


def test_malformed_time_and_version_are_rejected() -> None:
    base = {"ce_id": "1", "ce_type": "t", "ce_source": "s"}
    with pytest.raises(MissingHeaderError, match="ce_time"):
        parse_meta({**base, "ce_time": "yesterday"})
    with pytest.raises(MissingHeaderError, match="specversion"):
        parse_meta({**base, "ce_specversion": "0.3"})


def test_headers_dict_skips_undecodable_values() -> None:
    assert headers_dict([("a", b"\xff\xfe"), ("b", b"ok"), ("c", None)]) == {"b": "ok"}
