"""Reports from outside: released cells (k, noise, clipping), epoch budgets, ownership, replay."""

from __future__ import annotations

from datetime import datetime, timedelta

import grpc
import pytest
from ads_steps import NOW, AdsWorld, eventually

from shopstream.ads.v1 import ads_pb2
from shopstream.ads.v1 import ads_service_pb2 as pb

pytestmark = pytest.mark.integration
DAY = timedelta(days=1)


async def _converted(ads: AdsWorld, campaign: object, buyer: str, at: object, amount: int) -> str:
    await ads.click(buyer, campaign, at - timedelta(hours=1))  # type: ignore[arg-type, operator]
    return await ads.paid_order(buyer, amount, at)  # type: ignore[arg-type]


async def _day_of_buyers(
    ads: AdsWorld, campaign: ads_pb2.Campaign, at: datetime, amounts: list[int], tag: str
) -> list[str]:
    return [
        await _converted(ads, campaign, f"{tag}-{i}", at + timedelta(minutes=i), amount)
        for i, amount in enumerate(amounts)
    ]


async def _audited(
    ads: AdsWorld, campaign: ads_pb2.Campaign, orders: int
) -> pb.GetCampaignReportResponse:
    """Wait until the audit's exact view counts every order (the per-order rows are current)
    and every order's click (one each, `_converted`): an order that names no click is credited
    at once, maybe to the view before its click, a hop longer through screening, is billed."""

    async def complete() -> pb.GetCampaignReportResponse | None:
        r = await ads.audit(campaign)
        return r if r.total.attributed_orders == r.total.clicks == orders else None

    return await eventually(complete)


def _cells(r: pb.GetCampaignReportResponse) -> list[tuple[str, int | None, int | None]]:
    return [
        (
            d.day,
            d.attributed_orders if d.HasField("attributed_orders") else None,
            d.attributed_gmv.amount_minor if d.HasField("attributed_gmv") else None,
        )
        for d in r.days
    ]


async def test_cells_below_k_are_absent_and_totals_are_sums_of_released_cells(
    ads: AdsWorld,
) -> None:
    campaign = await ads.campaign("seller-report")
    day1, day2 = NOW - 3 * DAY, NOW - 2 * DAY
    orders = await _day_of_buyers(ads, campaign, day1, [1_000] * 4, "r-a")
    orders += await _day_of_buyers(ads, campaign, day2, [2_000] * 2, "r-b")
    await ads.attributions(set(orders), expect=6)

    exact = await _audited(ads, campaign, 6)
    assert not exact.noised and exact.total.attributed_gmv.amount_minor == 8_000
    assert [(d.attributed_orders, d.attributed_gmv.amount_minor) for d in exact.days] == [
        (4, 4_000),
        (2, 4_000),
    ]

    report = await ads.report(campaign)
    first, second = report.days
    assert report.k_threshold == 3 and report.noised
    assert report.noise_mechanism == "discrete-laplace"
    assert report.epsilon_per_cell == 1.0 and report.gmv_clip_bound.amount_minor == 10_000
    assert report.epsilon_spent == 1.0 and report.cells_released == 1
    assert report.epsilon_remaining == 1.0 and report.budget_epoch_days == 7
    assert report.HasField("budget_resets_at")
    # Day 1: 4 buyers >= k, released (noised). Day 2: 2 < k, the conversion cells are absent.
    assert first.HasField("attributed_orders") and first.HasField("attributed_gmv")
    assert second.conversions_suppressed and not second.conversions_pending
    assert not second.HasField("attributed_orders") and not second.HasField("attributed_gmv")
    assert not second.HasField("roas")
    assert second.clicks == 2 and second.spend.amount_minor == 200  # traffic is always shown
    # The total is the released day 1 only: total minus visible days reveals nothing.
    assert report.total.attributed_orders == first.attributed_orders
    assert report.total.attributed_gmv.amount_minor == first.attributed_gmv.amount_minor
    assert report.total.days_withheld == 1
    assert report.total.impressions == 6 and report.total.clicks == 6

    # The same query in the same epoch: the same numbers, nothing spent; noise=false changes
    # nothing for an advertiser (the flag is ignored: the token decides).
    for noise in (False, True, False):
        again = await ads.report(campaign, noise=noise)
        assert _cells(again) == _cells(report) and again.total == report.total
        assert again.epsilon_spent == 0.0 and again.cells_released == 0
        assert again.epsilon_remaining == 1.0


async def test_the_epoch_budget_runs_out_and_repeats_are_free(ads: AdsWorld) -> None:
    campaign = await ads.campaign("seller-budget")
    days = [NOW - (5 - i) * DAY for i in range(3)]
    orders = []
    for i, day in enumerate(days):
        orders += await _day_of_buyers(ads, campaign, day, [1_000] * 3, f"b-{i}")
    await ads.attributions(set(orders), expect=9)
    await _audited(ads, campaign, 9)
    a, b, c = (d.strftime("%Y-%m-%d") for d in days)

    first = await ads.report(campaign, from_day=a, to_day=a)
    assert (first.epsilon_spent, first.epsilon_remaining) == (1.0, 1.0)
    second = await ads.report(campaign, from_day=b, to_day=b)
    assert (second.epsilon_spent, second.epsilon_remaining) == (1.0, 0.0)
    for from_day, to_day in ((c, c), (a, c)):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await ads.report(campaign, from_day=from_day, to_day=to_day)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        details = refused.value.details() or ""
        assert "privacy budget" in details and "resets at" in details
        assert first.budget_resets_at.ToDatetime().isoformat() in details
        print(f"refused {from_day}..{to_day}: {details}")
    # Released cells stay readable, the same numbers, for free.
    for query, earlier in (((a, a), first), ((b, b), second)):
        again = await ads.report(campaign, from_day=query[0], to_day=query[1])
        assert _cells(again) == _cells(earlier) and again.epsilon_spent == 0.0
    both = await ads.report(campaign, from_day=a, to_day=b)
    assert _cells(both) == _cells(first) + _cells(second) and both.epsilon_spent == 0.0


async def test_one_huge_order_moves_a_released_gmv_cell_by_at_most_the_bound(
    ads: AdsWorld,
) -> None:
    clip = 10_000  # the fixture's gmv_clip_minor
    campaign = await ads.campaign("seller-whale")
    day = NOW - 2 * DAY
    orders = await _day_of_buyers(ads, campaign, day, [1_000, 1_000, 1_000, 100 * clip], "w")
    await ads.attributions(set(orders), expect=4)
    exact = await _audited(ads, campaign, 4)
    assert exact.total.attributed_gmv.amount_minor == 3_000 + 100 * clip

    report = await ads.report(campaign)
    released = report.days[0].attributed_gmv.amount_minor
    # GMV noise: discrete Laplace with scale clip / (epsilon / 2) = 20,000; ten scales are
    # exceeded with probability e^-10.
    scale = clip / (report.epsilon_per_cell / 2)
    without_whale = 3_000
    print(
        f"whale order {100 * clip}, clip {clip}: exact cell {exact.total.attributed_gmv.amount_minor}"
        f", released {released}, clipped sum {without_whale + clip}, noise scale {scale:g}"
    )
    assert abs(released - (without_whale + clip)) <= 10 * scale
    assert released - without_whale <= clip + 10 * scale < 100 * clip


async def test_advertisers_see_only_their_own_campaigns(ads: AdsWorld) -> None:
    campaign = await ads.campaign("seller-own")
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await ads.stub.GetCampaignReport(
            pb.GetCampaignReportRequest(campaign_id=campaign.campaign_id),
            metadata=ads.auth("seller", "seller-other"),
            timeout=5,
        )
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await ads.stub.CreateCampaign(
            pb.CreateCampaignRequest(request_id="r1", advertiser_id="seller-own", name="no bid"),
            metadata=ads.auth("seller", "seller-own"),
            timeout=5,
        )
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_replaying_the_inputs_changes_no_report_number(ads: AdsWorld) -> None:
    campaign = await ads.campaign("seller-replay", bid=70)
    t = NOW - 2 * DAY
    orders = []
    for i in range(5):
        orders.append(
            await _converted(ads, campaign, f"rp-buyer-{i}", t + timedelta(minutes=10 * i), 1_500)
        )
    await ads.impression("rp-viewer", campaign, t)
    await ads.refund("rp-buyer-0", orders[0], 500, 1_500, t + DAY)
    await ads.attributions(set(orders), expect=6)

    async def settled() -> pb.GetCampaignReportResponse | None:
        r = await ads.audit(campaign)
        return (
            r if r.total.attributed_gmv.amount_minor == 7_000 and r.total.impressions == 6 else None
        )

    before = await eventually(settled)
    assert before.total.clicks == 5 and before.total.spend.amount_minor == 350

    await ads.replay()
    # Sentinels behind the replay on the same keys (same partitions): when they are counted,
    # every replayed record ahead of them has been processed.
    await ads.impression("rp-buyer-4", campaign, t + DAY)
    late = await ads.click("rp-buyer-4", campaign, t + DAY, impression_id="")
    sentinel = await ads.paid_order("rp-buyer-4", 1_000, t + DAY + timedelta(hours=1))
    await ads.attributions({sentinel}, expect=1)

    async def caught_up() -> pb.GetCampaignReportResponse | None:
        r = await ads.audit(campaign)
        return r if r.total.attributed_orders == 6 and r.total.clicks == 6 else None

    after = await eventually(caught_up)
    assert late
    # Exactly the sentinels' effect: 2 impressions (one with the click), 1 click, 1 order.
    assert after.total.impressions == before.total.impressions + 2
    assert after.total.spend.amount_minor == before.total.spend.amount_minor + 70
    assert (
        after.total.attributed_gmv.amount_minor == before.total.attributed_gmv.amount_minor + 1_000
    )
    assert [d.day for d in after.days][: len(before.days)] == [d.day for d in before.days]
    for old, new in zip(before.days[:1], after.days[:1], strict=True):
        assert (old.impressions, old.clicks, old.spend.amount_minor) == (
            new.impressions,
            new.clicks,
            new.spend.amount_minor,
        )
