"""`topics tail` options: where reading starts, since when, which records pass."""

import re
from datetime import UTC, datetime

import pytest

from shopstream_cli.tail import Filters, StartAt, parse_since


def test_offsets_parse_like_kcat() -> None:
    assert StartAt.parse("earliest") == StartAt("earliest")
    assert StartAt.parse("latest") == StartAt("latest")
    assert StartAt.parse("42") == StartAt("offset", 42)
    assert StartAt.parse("-5") == StartAt("last", 5)
    with pytest.raises(ValueError, match="earliest, latest, N or -N"):
        StartAt.parse("soon")


def test_since_takes_durations_and_iso_times() -> None:
    now = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    assert parse_since("15m", now) == datetime(2026, 12, 6, 11, 45, tzinfo=UTC)
    assert parse_since("2h", now) == datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    assert parse_since("1d", now) == datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    assert parse_since("2026-12-06T08:30:00Z", now) == datetime(2026, 12, 6, 8, 30, tzinfo=UTC)
    # No zone given: UTC, as everywhere in shopstream.
    assert parse_since("2026-12-06T08:30", now) == datetime(2026, 12, 6, 8, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="duration"):
        parse_since("yesterday", now)


def _entry(key: str, ce_type: str, value: object) -> dict[str, object]:
    return {"key": key, "ce_type": ce_type, "value": value, "partition": 0, "offset": 1}


def test_filters_match_key_type_and_pattern() -> None:
    paid = _entry("o-1", "shopstream.commerce.v1.OrderPaid", {"order": {"order_id": "o-1"}})
    placed = _entry("o-2", "shopstream.commerce.v1.OrderPlaced", {"order": {"order_id": "o-2"}})
    assert Filters().matches(paid)
    assert Filters(key="o-1").matches(paid) and not Filters(key="o-1").matches(placed)
    # Full or short type name; a prefix of the short name is not enough.
    assert Filters(ce_type="shopstream.commerce.v1.OrderPaid").matches(paid)
    assert Filters(ce_type="OrderPaid").matches(paid)
    assert not Filters(ce_type="Paid").matches(paid)
    assert not Filters(ce_type="OrderPaid").matches(placed)
    assert Filters(pattern=re.compile(r'"order_id": "o-2"')).matches(placed)
    assert not Filters(pattern=re.compile("o-2")).matches(paid)
