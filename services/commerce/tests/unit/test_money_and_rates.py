from datetime import UTC, datetime, timedelta

from shopstream_commerce.domain.commission_rates import RateChange, effective_from, rate_for
from shopstream_commerce.domain.money import commission, gpm, prorated

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOTICE = timedelta(days=30)


def test_commission_rounds_toward_zero() -> None:
    assert commission(1_999, 1_000) == 199
    assert commission(-1_999, 1_000) == -199
    assert commission(5, 1_000) == 0


def test_prorated_refund_and_gpm() -> None:
    assert prorated(3_000, 1, 3) == 1_000
    assert prorated(1_000, 1, 3) == 333
    assert gpm(12_345, 2_000) == 6_172
    assert gpm(100, 0) == 0


def test_a_cut_waits_out_the_notice_a_raise_is_immediate() -> None:
    assert effective_from(500, 1_000, T0, NOTICE) == T0 + NOTICE
    assert effective_from(1_500, 1_000, T0, NOTICE) == T0
    changes = [
        RateChange(1_000, T0, T0),
        RateChange(500, T0 + timedelta(days=1), T0 + timedelta(days=31)),
    ]
    # An order placed the day after the cut still earns the old rate.
    assert rate_for(changes, T0 + timedelta(days=2), 0) == 1_000
    assert rate_for(changes, T0 + timedelta(days=31), 0) == 500
    assert rate_for(changes, T0 - timedelta(days=1), 0) == 0


def test_refunds_give_back_the_whole_fee_and_no_more() -> None:
    from shopstream_commerce.domain.settlements import fee_returned, platform_fee

    fee = platform_fee(999, 500)  # 49
    parts = [333, 333, 333]
    back, before = [], 0
    for part in parts:
        back.append(fee_returned(fee, 999, before, part))
        before += part
    assert sum(back) == fee == 49
    assert fee_returned(fee, 999, 999, 10) == 0
