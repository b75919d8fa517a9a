"""Attribution settings per campaign, as advertisers choose them (issue #14, item 5): a click
window of 1, 7, 14 or 28 days, views credited for 1 or 7 days or not at all, and an engaged-view
rule; chosen at creation, shown on the campaign, named in every credit's model version."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from ads_steps import NOW, AdsWorld, usd

from shopstream.ads.v1 import ads_events_pb2 as ev
from shopstream.ads.v1 import ads_pb2
from shopstream.ads.v1 import ads_service_pb2 as pb

pytestmark = pytest.mark.integration

DAY_S = 86_400


async def test_each_campaign_credits_within_its_own_windows(ads: AdsWorld) -> None:
    one_day = await ads.campaign(
        "adv-1d", attribution=ads_pb2.CampaignAttribution(click_window=ads_pb2.CLICK_WINDOW_ONE_DAY)
    )
    default = await ads.campaign("adv-default")
    views_off = await ads.campaign(
        "adv-no-views", attribution=ads_pb2.CampaignAttribution(view_window=ads_pb2.VIEW_WINDOW_OFF)
    )
    engaged = await ads.campaign(
        "adv-engaged", attribution=ads_pb2.CampaignAttribution(engaged_view_ms=6_000)
    )
    # The choice is the campaign's, shown back as asked.
    assert one_day.attribution.click_window == ads_pb2.CLICK_WINDOW_ONE_DAY
    assert views_off.attribution.view_window == ads_pb2.VIEW_WINDOW_OFF
    assert engaged.attribution.engaged_view_ms == 6_000

    t = NOW - timedelta(days=5)
    # A click two days before the order: outside a 1-day window, inside the default 7 days.
    # (The orders name their clicks, so each waits for its click and is decided once.)
    click = await ads.click("b-1d", one_day, t)
    late_for_1d = await ads.paid_order("b-1d", 2_000, t + timedelta(days=2), click_id=click)
    click = await ads.click("b-7d", default, t)
    within_7d = await ads.paid_order("b-7d", 2_000, t + timedelta(days=2), click_id=click)
    # A view an hour before the order: never credited where views are off.
    await ads.impression("b-off", views_off, t)
    after_view_off = await ads.paid_order("b-off", 2_000, t + timedelta(hours=1))
    # Views of 3 s and 8 s where only views of 6 s or more count.
    await ads.impression("b-short", engaged, t, watched_ms=3_000)
    after_short = await ads.paid_order("b-short", 2_000, t + timedelta(hours=1))
    long_view = await ads.impression("b-long", engaged, t, watched_ms=8_000)
    after_long = await ads.paid_order("b-long", 2_000, t + timedelta(hours=1))

    orders = {late_for_1d, within_7d, after_view_off, after_short, after_long}

    await ads.attributions({within_7d, after_long}, expect=2)
    # Every input is in; a credit for any other order would show within these 5 s.
    found = await ads.records(
        "ads.attributions.v1", ev.Attribution, 3, lambda a: a.order_id in orders, 5
    )
    credited = {a.order_id: a for a in found}
    assert set(credited) == {within_7d, after_long}, sorted(credited)
    assert credited[after_long].touch_id == long_view
    assert credited[within_7d].model_version == f"last-touch-v1/click={7 * DAY_S}s/view={DAY_S}s"
    assert credited[after_long].model_version == (
        f"last-touch-v1/click={7 * DAY_S}s/view={DAY_S}s/engaged=6000ms"
    )


async def test_a_choice_the_server_does_not_offer_is_refused(ads: AdsWorld) -> None:
    for asked, field in (
        (ads_pb2.CampaignAttribution(engaged_view_ms=60_001), "attribution.engaged_view_ms"),
        (ads_pb2.CampaignAttribution(click_window=9), "attribution.click_window"),  # type: ignore[arg-type]
        (ads_pb2.CampaignAttribution(view_window=7), "attribution.view_window"),  # type: ignore[arg-type]
    ):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await ads.stub.CreateCampaign(
                pb.CreateCampaignRequest(
                    request_id=ads.next_id("req"),
                    advertiser_id=ads.who("adv-bad"),
                    name="bad choice",
                    promoted_product_ids=["prod-1"],
                    bid_type=ads_pb2.BID_TYPE_CPC,
                    bid=usd(100),
                    daily_budget=usd(10_000),
                    total_budget=usd(100_000),
                    attribution=asked,
                ),
                metadata=ads.auth("seller", ads.who("adv-bad")),
                timeout=10,
            )
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field in (raised.value.details() or "")
