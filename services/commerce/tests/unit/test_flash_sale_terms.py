"""Flash sale terms: TikTok Shop's bounds, and when a deal is open."""

from datetime import UTC, datetime, timedelta

import pytest

from shopstream_commerce.domain.flash_sales import FlashSale, check_terms
from shopstream_platform.errors import InvalidArgumentError

T0 = datetime(2026, 12, 6, 20, tzinfo=UTC)


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        ((2_000, 2_000, 20, 2, 10, 60), "deal_price"),
        ((0, 2_000, 20, 2, 10, 60), "deal_price"),
        ((1_000, 2_000, 0, 1, 10, 60), "total_units"),
        ((1_000, 2_000, 20, 21, 10, 60), "per_buyer_limit"),
        ((1_000, 2_000, 20, 2, 9, 60), "countdown_s"),
        ((1_000, 2_000, 20, 2, 301, 60), "countdown_s"),
        ((1_000, 2_000, 20, 2, 10, 59), "duration_s"),
        ((1_000, 2_000, 20, 2, 10, 1_201), "duration_s"),
    ],
)
def test_terms_out_of_bounds_name_their_field(terms: tuple[int, ...], field: str) -> None:
    with pytest.raises(InvalidArgumentError, match=field):
        check_terms(*terms)


def test_a_deal_is_open_from_the_end_of_its_countdown_until_it_ends() -> None:
    sale = FlashSale("f", "l", "s", "p", "k", 1_000, "GBP", 20, 0, 2, T0, T0 + timedelta(minutes=1))
    assert not sale.open_at(T0 - timedelta(seconds=1))
    assert sale.open_at(T0)
    assert not sale.open_at(T0 + timedelta(minutes=1))
