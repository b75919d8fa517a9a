"""Catalog's hand-mirrored enums equal their proto enums (names and numbers)."""

from __future__ import annotations

import enum
from typing import Any

import pytest

from shopstream.catalog.v1 import catalog_pb2
from shopstream_catalog.domain.fulfilment import InboundState
from shopstream_catalog.domain.model import ListingStatus, QualityTier
from shopstream_platform.enums import mirror_mismatches

MIRRORS = [
    (ListingStatus, catalog_pb2.ListingStatus),
    (QualityTier, catalog_pb2.QualityTier),
    (InboundState, catalog_pb2.InboundState),
]


@pytest.mark.parametrize(("mirror", "proto"), MIRRORS, ids=lambda m: getattr(m, "__name__", ""))
def test_mirror_matches_its_proto(mirror: type[enum.IntEnum], proto: Any) -> None:
    assert mirror_mismatches(mirror, proto) == []
