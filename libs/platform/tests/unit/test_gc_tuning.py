"""The collector's settings: a larger young generation, and the start-up heap frozen."""

import gc
from collections.abc import Iterator

import pytest

from shopstream_platform.gc_tuning import freeze_heap, tune_gc


@pytest.fixture(autouse=True)
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()


def test_the_young_threshold_changes_and_the_older_ones_stay() -> None:
    _, gen1, gen2 = gc.get_threshold()
    tune_gc(50_000)
    assert gc.get_threshold() == (50_000, gen1, gen2)


def test_zero_keeps_the_default() -> None:
    before = gc.get_threshold()
    tune_gc(0)
    assert gc.get_threshold() == before


def test_a_frozen_heap_is_out_of_the_collectors_way() -> None:
    kept = [{"n": i} for i in range(1_000)]
    freeze_heap()
    assert gc.get_freeze_count() >= len(kept)
