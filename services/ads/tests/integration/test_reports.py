"""Reports from outside: k-suppression, the privacy budget, ownership, and replay safety."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from ads_steps import NOW, AdsWorld, eventually

from shopstream.ads.v1 import ads_service_pb2 as pb

pytestmark = pytest.mark.integration
DAY = timedelta(days=1)


async def _converted(ads: AdsWorld, campaign: object, buyer: str, at: object, amount: int) -> str:
    await ads.click(buyer, campaign, at - timedelta(hours=1))  # type: ignore[arg-type, operator]
    return await ads.paid_order(buyer, amount, at)  # type: ignore[arg-type]


async def test_cells_below_k_are_absent_and_noise_spends_the_budget(ads: AdsWorld) -> None:
    campaign = await ads.campaign("seller-report")
    day1, day2 = NOW - 3 * DAY, NOW - 2 * DAY
    orders = [
        await _converted(ads, campaign, f"r-buyer-{i}", day1 + timedelta(minutes=i), 1_000)
        for i in range(4)
    ]
    orders += [
        await _converted(ads, campaign, f"r-buyer-{i}", day2 + timedelta(minutes=i), 2_000)
        for i in range(4, 6)
    ]
    await ads.attributions(set(orders), expect=6)

    async def complete() -> pb.GetCampaignReportResponse | None:
        r = await ads.report(campaign)
        return r if r.total.attributed_orders == 6 else None

    report = await eventually(complete)
    first, second = report.days
    assert report.k_threshold == 3
    # Day 1: 4 conversions >= k, shown. Day 2: 2 < k, the conversion cells are absent.
    assert first.attributed_orders == 4 and first.attributed_gmv.amount_minor == 4_000
    assert first.HasField("roas") and first.roas == pytest.approx(4_000 / 400)
    assert second.conversions_suppressed
    assert not second.HasField("attributed_orders") and not second.HasField("attributed_gmv")
    assert not second.HasField("roas")
    assert second.clicks == 2 and second.spend.amount_minor == 200  # spend is always shown

    # Noise: epsilon 0.5 per query from a budget of 1.0 — two answers, then refused.
    for left in (0.5, 0.0):
        noisy = await ads.report(campaign, noise=True)
        assert noisy.noised and noisy.epsilon_remaining == pytest.approx(left)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await ads.report(campaign, noise=True)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "privacy budget" in (refused.value.details() or "")
    # Exact (un-noised) reports spend nothing and keep working.
    assert (await ads.report(campaign)).total.attributed_orders == 6


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
        r = await ads.report(campaign)
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
        r = await ads.report(campaign)
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
