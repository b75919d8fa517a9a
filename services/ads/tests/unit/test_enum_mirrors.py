"""Ads' hand-mirrored enums equal their proto enums (names and numbers)."""

from __future__ import annotations

import enum
from typing import Any

import pytest

from shopstream.ads.v1 import ads_pb2
from shopstream_ads.domain.campaigns import BidType, Status
from shopstream_platform.enums import mirror_mismatches

MIRRORS = [
    (BidType, ads_pb2.BidType),
    (Status, ads_pb2.CampaignStatus),
]


@pytest.mark.parametrize(("mirror", "proto"), MIRRORS, ids=lambda m: getattr(m, "__name__", ""))
def test_mirror_matches_its_proto(mirror: type[enum.IntEnum], proto: Any) -> None:
    assert mirror_mismatches(mirror, proto) == []
