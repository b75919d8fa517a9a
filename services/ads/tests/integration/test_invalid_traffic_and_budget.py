"""Click spam and budgets, from outside: edge topics in, flags and campaign events out, gRPC."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from ads_steps import NOW, AdsWorld, eventually

from shopstream.ads.v1 import ads_events_pb2 as ev
from shopstream.ads.v1 import ads_pb2
from shopstream.ads.v1 import ads_service_pb2 as pb

pytestmark = pytest.mark.integration


async def test_a_hundred_clicks_from_one_device_in_a_minute_are_flagged_unbilled_unattributed(
    ads: AdsWorld,
) -> None:
    campaign = await ads.campaign("seller-spam", bid=50)
    t = NOW - timedelta(hours=3)
    clicks = []
    for i in range(100):
        buyer = f"bot-buyer-{i % 7}"
        clicks.append(
            await ads.click(
                buyer, campaign, t + timedelta(seconds=i * 0.5), install="bot-install-1"
            )
        )
    # A bot buyer then "buys" with one of the clicks on the line: nothing to attribute to.
    order = await ads.paid_order("bot-buyer-0", 9_900, t + timedelta(minutes=5), click_id=clicks[0])
    # Later the same buyer clicks from their own phone and buys: that order is credited, and
    # being behind the first order in the buyer's partition, it shows the first was handled.
    later = t + timedelta(minutes=30)
    genuine = await ads.click("bot-buyer-0", campaign, later, install="phone-of-buyer-0")
    # A click no impression was served for: sophisticated invalid traffic (SIVT).
    forged = await ads.click("ghost-buyer", campaign, later, impression_id="imp-never-served")
    sentinel = await ads.paid_order("bot-buyer-0", 1_200, later + timedelta(minutes=5))

    flagged = await ads.flagged(set(clicks), expect=100)
    assert {f.click_id for f in flagged} == set(clicks)
    assert {f.reason for f in flagged} == {ev.INVALID_TRAFFIC_REASON_DEVICE_BURST}
    # The clicks that passed before the burst showed had their charge reversed.
    assert sum(f.charge_reversed for f in flagged) == 20

    # The bot's order is never credited: waiting for exactly {sentinel: genuine}.
    await ads.credited_to({sentinel: genuine}, uncredited=frozenset({order}))

    async def settled() -> pb.GetCampaignReportResponse | None:
        report = await ads.report(campaign)
        t = report.total
        return (
            report
            if t.clicks == 1 and t.spend.amount_minor == 50 and t.invalid_clicks == 101
            else None
        )

    report = await eventually(settled)
    # Only the genuine click is counted and billed; the 100 spam clicks cost nothing.
    assert report.total.clicks == 1
    assert report.total.spend.amount_minor == 50
    # Gross and net: 100 burst clicks (GIVT) and the forged one (SIVT) flagged; the 20 that were
    # billed before the burst showed had their charge reversed.
    assert (report.total.gross_clicks, report.total.givt_clicks) == (102, 100)
    assert (report.total.sivt_clicks, report.total.credited_clicks) == (1, 20)
    assert sum(d.invalid_clicks for d in report.days) == 101
    assert (await ads.flagged({forged}, expect=1))[0].reason == (
        ev.INVALID_TRAFFIC_REASON_NO_IMPRESSION
    )
    assert (
        ads.service.metric("shopstream_ads_flagged_clicks_total", {"reason": "device_burst"}) >= 100
    )


async def test_budget_stops_selection_after_ten_billed_clicks(ads: AdsWorld) -> None:
    campaign = await ads.campaign(
        "seller-budget", bid=100, daily=1_000, total=1_000, placements=("budget-test",)
    )
    select = pb.SelectAdsRequest(placement="budget-test", slots=3)

    async def selected() -> bool:
        answer = await ads.stub.SelectAds(select, metadata=ads.auth("service", "edge"), timeout=5)
        return campaign.campaign_id in {a.campaign_id for a in answer.ads}

    assert await selected()
    t = NOW - timedelta(minutes=30)
    for i in range(9):
        await ads.click(f"shopper-{i}", campaign, t + timedelta(minutes=i))

    async def spent(minor: int) -> bool:
        got = await ads.stub.GetCampaign(
            pb.GetCampaignRequest(campaign_id=campaign.campaign_id), metadata=ads.auth(), timeout=5
        )
        return got.campaign.spent_total.amount_minor == minor

    await eventually(lambda: spent(900))
    assert await selected()  # 9 billed clicks: 100 left, still serving
    await ads.click("shopper-9", campaign, t + timedelta(minutes=9))
    await eventually(lambda: spent(1_000))
    assert not await selected()
    got = await ads.stub.GetCampaign(
        pb.GetCampaignRequest(campaign_id=campaign.campaign_id), metadata=ads.auth(), timeout=5
    )
    assert got.campaign.status == ads_pb2.CAMPAIGN_STATUS_BUDGET_EXHAUSTED
    # Clicks arriving after the budget ran out are counted but not charged.
    await ads.click("shopper-10", campaign, t + timedelta(minutes=10))
    report = await eventually(lambda: _report_with_clicks(ads, campaign, 11))
    assert report.total.spend.amount_minor == 1_000
    exhausted = await ads.records(
        "ads.campaigns.v1",
        ev.CampaignBudgetExhausted,
        expect=2,
        keep=lambda e: e.campaign_id == campaign.campaign_id,
    )
    assert {e.budget for e in exhausted} == {ev.BUDGET_KIND_TOTAL, ev.BUDGET_KIND_DAILY}


async def _report_with_clicks(
    ads: AdsWorld, campaign: ads_pb2.Campaign, clicks: int
) -> pb.GetCampaignReportResponse | None:
    report = await ads.report(campaign)
    return report if report.total.clicks == clicks else None


async def test_a_click_ahead_of_its_impression_is_held_for_the_join_grace(ads: AdsWorld) -> None:
    """The edge's topics race: a click can reach attribution before the impression it came
    through. It is held (in the buyer's state, on a timer) until the impression arrives, then
    billed; one whose impression never comes is flagged when the grace ends."""
    campaign = await ads.campaign("seller-race", bid=50)
    at = NOW - timedelta(hours=1)
    late_impression = ads.next_id("imp")
    early = await ads.click("racer", campaign, at, impression_id=late_impression)
    orphan = await ads.click("racer-2", campaign, at, impression_id="imp-never-arrives")
    await asyncio.sleep(1.0)  # well inside the grace, after the click reached its buyer
    message = ads_pb2.Impression(
        impression_id=late_impression,
        campaign_id=campaign.campaign_id,
        buyer_id=ads.who("racer"),
        placement="feed",
        install_id=f"install-{ads.who('racer')}",
    )
    message.at.FromDatetime(at - timedelta(seconds=30))
    await ads.send("ads.impressions.v1", message.buyer_id, message, at)

    (flag,) = await ads.flagged({early, orphan}, expect=1)
    assert (flag.click_id, flag.reason) == (orphan, ev.INVALID_TRAFFIC_REASON_NO_IMPRESSION)

    async def settled() -> pb.GetCampaignReportResponse | None:
        report = await ads.audit(campaign)
        t = report.total
        return report if (t.clicks, t.invalid_clicks) == (1, 1) else None

    report = await eventually(settled)
    assert report.total.spend.amount_minor == 50  # the held click, billed once it joined
    assert ads.service.metric("shopstream_ads_clicks_total", {"placement": "feed"}) == 1


async def test_a_click_found_invalid_after_its_order_was_credited_withdraws_the_credit(
    ads: AdsWorld,
) -> None:
    """The burst shows only after a click passed screening and an order was credited to it:
    the click is flagged retroactively, its charge reversed, and the credit withdrawn (the order
    falls back to what else it has: nothing here, the impression the click came through is
    tainted with it)."""
    campaign = await ads.campaign("seller-late-flag", bid=40)
    t = NOW - timedelta(hours=2)
    first = await ads.click("late-flag-buyer", campaign, t, install="late-flag-device")
    # The order names the click: decided once the click joins, credited to it.
    order = await ads.paid_order(
        "late-flag-buyer", 3_000, t + timedelta(seconds=30), click_id=first
    )
    (credit,) = await ads.attributions({order}, expect=1)
    assert (credit.touch_id, credit.withdrawn) == (first, False)

    # Then 25 clicks from the same device within the minute: a device burst that reaches back.
    for i in range(25):
        await ads.click(
            f"late-flag-bot-{i % 3}",
            campaign,
            t + timedelta(seconds=1 + i),
            install="late-flag-device",
        )
    (flag,) = await ads.flagged({first}, expect=1)
    assert flag.reason == ev.INVALID_TRAFFIC_REASON_DEVICE_BURST and flag.charge_reversed

    async def withdrawn() -> list[ev.Attribution] | None:
        records = await ads.attributions({order}, expect=2)
        return records if len(records) == 2 else None

    records = await eventually(withdrawn)
    assert sorted((a.touch_id, a.withdrawn, a.amount.amount_minor) for a in records) == [
        (first, False, 3_000),
        (first, True, -3_000),
    ]
