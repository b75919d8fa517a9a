"""Catalog's hand-mirrored enums equal their proto enums (names and numbers)."""

from __future__ import annotations

from shopstream.catalog.v1 import catalog_pb2
from shopstream_catalog.domain.fulfilment import InboundState
from shopstream_catalog.domain.model import ListingStatus, QualityTier
from shopstream_platform.enums import mirror_mismatches

MIRRORS = [
    (ListingStatus, catalog_pb2.ListingStatus),
    (QualityTier, catalog_pb2.QualityTier),
    (InboundState, catalog_pb2.InboundState),
]


def test_every_mirror_matches_its_proto() -> None:
    assert [problem for m, proto in MIRRORS for problem in mirror_mismatches(m, proto)] == []
