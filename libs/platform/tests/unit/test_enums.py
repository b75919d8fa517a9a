"""mirror_mismatches (enums.py): a hand-mirrored IntEnum against its proto enum."""

from __future__ import annotations

import enum

from shopstream.ads.v1 import ads_pb2
from shopstream_platform.enums import mirror_mismatches


class BidType(enum.IntEnum):
    CPC = 1
    CPM = 2


class Renumbered(enum.IntEnum):
    CPC = 2
    CPM = 1


class Partial(enum.IntEnum):
    CPC = 1
    CPV = 3


def test_a_faithful_mirror_has_no_mismatch() -> None:
    assert mirror_mismatches(BidType, ads_pb2.BidType) == []


def test_a_renumbered_member_is_reported() -> None:
    assert mirror_mismatches(Renumbered, ads_pb2.BidType) == [
        "Renumbered.CPC = 2, BID_TYPE_CPC = 1",
        "Renumbered.CPM = 1, BID_TYPE_CPM = 2",
    ]


def test_a_member_missing_on_either_side_is_reported() -> None:
    assert mirror_mismatches(Partial, ads_pb2.BidType) == [
        "Partial.CPV: no BID_TYPE_CPV",
        "BID_TYPE_CPM = 2: not in Partial",
    ]
