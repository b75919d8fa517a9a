from datetime import UTC, datetime, timedelta

from shopstream_commerce.domain.commission_rates import RateChange, RateLock, rate_for
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


def test_a_stored_cut_with_a_later_start_still_counts_from_its_date() -> None:
    changes = [
        RateChange(1_000, T0, T0),
        RateChange(500, T0 + timedelta(days=1), T0 + timedelta(days=31)),
    ]
    assert rate_for(changes, T0 + timedelta(days=2), 0) == 1_000
    assert rate_for(changes, T0 + timedelta(days=31), 0) == 500
    assert rate_for(changes, T0 - timedelta(days=1), 0) == 0


def test_targeted_overrides_open_for_that_creator_only_and_shop_ads_for_ad_lines() -> None:
    changes = [
        RateChange(1_000, T0, T0),
        RateChange(2_500, T0, T0, creator_id="star"),
        RateChange(300, T0, T0, shop_ads=True),
    ]
    later = T0 + timedelta(hours=1)
    assert rate_for(changes, later, 0, "star") == 2_500
    assert rate_for(changes, later, 0, "someone") == 1_000
    assert rate_for(changes, later, 0, "star", via_ad=True) == 300
    # Without a Shop Ads rate, an ad line earns the affiliate rate.
    assert rate_for(changes[:2], later, 0, "star", via_ad=True) == 2_500


def test_a_cut_spares_a_locked_creator_until_the_lock_ends() -> None:
    changes = [RateChange(1_000, T0, T0), RateChange(400, T0 + NOTICE / 30, T0 + NOTICE / 30)]
    locks = [RateLock("promoter", 1_000, T0 + NOTICE)]
    day = T0 + timedelta(days=2)
    assert rate_for(changes, day, 0, "promoter", locks=locks) == 1_000
    assert rate_for(changes, day, 0, "newcomer", locks=locks) == 400
    assert rate_for(changes, T0 + NOTICE, 0, "promoter", locks=locks) == 400


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


def test_an_open_rate_needing_approval_pays_only_approved_creators() -> None:
    changes = [
        RateChange(1_000, T0, T0, require_approval=True),
        RateChange(1_500, T0, T0, creator_id="named"),
    ]
    later = T0 + timedelta(hours=1)
    assert rate_for(changes, later, 0, "someone", approved=False) == 0
    assert rate_for(changes, later, 0, "someone", approved=True) == 1_000
    assert rate_for(changes, later, 0, "named", approved=False) == 1_500
