"""Ads' hand-mirrored enums equal their proto enums (names and numbers)."""

from __future__ import annotations

from shopstream.ads.v1 import ads_pb2
from shopstream_ads.domain.campaigns import BidType, ClickWindow, Status, ViewWindow
from shopstream_platform.enums import mirror_mismatches

MIRRORS = [
    (BidType, ads_pb2.BidType),
    (Status, ads_pb2.CampaignStatus),
    (ClickWindow, ads_pb2.ClickWindow),
    (ViewWindow, ads_pb2.ViewWindow),
]


def test_every_mirror_matches_its_proto() -> None:
    assert [problem for m, proto in MIRRORS for problem in mirror_mismatches(m, proto)] == []
