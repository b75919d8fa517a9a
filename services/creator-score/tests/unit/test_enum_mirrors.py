"""Creator-score mirrors no proto enum in an IntEnum; its one hand-kept mapping of a proto enum,
the API's sort orders to the index's sort keys, covers every value of it."""

from __future__ import annotations

from shopstream.creators.v1 import creator_score_service_pb2 as pb
from shopstream_creator_score.api.servicer import SORT_KEYS


def test_every_sort_order_has_a_sort_key() -> None:
    assert set(SORT_KEYS) == {v.number for v in pb.SortBy.DESCRIPTOR.values}
