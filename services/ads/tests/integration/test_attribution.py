"""Attribution from outside: touchpoints and orders in on topics, attributions out on a topic."""

from __future__ import annotations

from datetime import timedelta

import pytest
from ads_steps import NOW, AdsWorld

from shopstream.ads.v1 import ads_events_pb2 as ev

pytestmark = pytest.mark.integration
DAY = timedelta(days=1)


async def test_click_window_view_window_and_clicks_beat_views(ads: AdsWorld) -> None:
    campaign = await ads.campaign("seller-attr")
    t = NOW - 10 * DAY

    # A click at t and a paid order by the same buyer at t + 3 days: credited to that click.
    first_click = await ads.click("b-3days", campaign, t)
    in_window = await ads.paid_order("b-3days", 5_000, t + 3 * DAY)

    # At t + 8 days it is not; a later click and order of the same buyer (same partition, so
    # processed after) proves the first order was seen and left unattributed.
    await ads.click("b-8days", campaign, t)
    too_late = await ads.paid_order("b-8days", 5_000, t + 8 * DAY)
    fresh_click = await ads.click("b-8days", campaign, t + 8 * DAY + timedelta(hours=1))
    sentinel = await ads.paid_order("b-8days", 1_000, t + 8 * DAY + timedelta(hours=2))

    # A view 2 hours before an order, no click: credited to the view.
    view = await ads.impression("b-view", campaign, t - timedelta(hours=2))
    view_only = await ads.paid_order("b-view", 2_000, t)

    # A view 2 hours before and a click 2 days before: the click wins.
    click = await ads.click("b-both", campaign, t - 2 * DAY)
    await ads.impression("b-both", campaign, t - timedelta(hours=2))
    both = await ads.paid_order("b-both", 3_000, t)

    # too_late is never credited; the others to the touch the rules pick.
    found = await ads.credited_to(
        {in_window: first_click, sentinel: fresh_click, view_only: view, both: click},
        uncredited=frozenset({too_late}),
    )
    assert found[in_window].touch == ev.TOUCH_TYPE_CLICK
    assert found[in_window].amount.amount_minor == 5_000
    assert found[view_only].touch == ev.TOUCH_TYPE_VIEW
    assert found[both].touch == ev.TOUCH_TYPE_CLICK
    for a in found.values():
        assert a.campaign_id == campaign.campaign_id
        assert a.model_version == "last-touch-v1/click=604800s/view=86400s"
        assert a.advertiser_id == ads.who("seller-attr")


async def test_without_consent_only_click_ids_count_and_refunds_reduce_gmv(ads: AdsWorld) -> None:
    campaign = await ads.campaign("seller-consent")
    t = NOW - 5 * DAY
    # No consent: a view is never used, and a click only through the order's ad_click_id.
    await ads.impression("b-nc-view", campaign, t - timedelta(hours=1), consent=False)
    view_order = await ads.paid_order("b-nc-view", 1_000, t, consent=False)
    clicked = await ads.click("b-nc-click", campaign, t - DAY, consent=False)
    no_id = await ads.paid_order("b-nc-click", 1_000, t, consent=False)
    with_id = await ads.paid_order(
        "b-nc-click", 4_000, t + timedelta(hours=1), consent=False, click_id=clicked
    )
    await ads.refund("b-nc-click", with_id, 1_500, 4_000, t + DAY)

    found = await ads.attributions({view_order, no_id, with_id}, expect=2)
    assert sorted((a.order_id, a.refund, a.amount.amount_minor) for a in found) == sorted(
        [(with_id, False, 4_000), (with_id, True, -1_500)]
    )
    assert {a.touch_id for a in found} == {clicked}
