"""Orders and the clicks they name travel on different topics (a click takes one more hop,
through screening): an order naming a click not known yet waits for that click, not for the
whole join grace; an order naming none is decided at once."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from ads_steps import NOW, AdsWorld, eventually

from shopstream.ads.v1 import ads_events_pb2 as ev
from shopstream_ads.settings import AttributionSettings

pytestmark = pytest.mark.integration
# Far longer than the test: a credit seen well before it ends was not released by the grace.
JOIN_GRACE_S = 60.0


@pytest.fixture
def attribution() -> AttributionSettings:
    return AttributionSettings(join_grace_s=JOIN_GRACE_S)


async def test_an_order_waits_for_the_click_it_names_not_for_the_grace(ads: AdsWorld) -> None:
    campaign = await ads.campaign("seller-join")
    t = NOW - timedelta(hours=2)
    started = time.monotonic()

    # The order (and its partial refund) reach attribution before the click they name.
    view = await ads.impression("b-join", campaign, t - timedelta(minutes=1))
    click_id = ads.next_id("clk")
    order = await ads.paid_order("b-join", 3_000, t + timedelta(minutes=10), click_id=click_id)
    await ads.refund("b-join", order, 1_000, 3_000, t + timedelta(minutes=20))
    # An order naming no click, by a buyer with a view: nothing to wait for.
    seen = await ads.impression("b-view", campaign, t - timedelta(minutes=1))
    view_order = await ads.paid_order("b-view", 2_000, t)
    await ads.click("b-join", campaign, t, impression_id=view, click_id=click_id)

    found = await ads.attributions({order, view_order}, expect=3)
    waited = time.monotonic() - started
    # Only the credit to the click and its refund: never a credit to the view that the click
    # would then have had to withdraw.
    assert sorted(
        (a.order_id, a.touch_id, a.refund, a.withdrawn, a.amount.amount_minor) for a in found
    ) == sorted(
        [
            (order, click_id, False, False, 3_000),
            (order, click_id, True, False, -1_000),
            (view_order, seen, False, False, 2_000),
        ]
    )
    assert {a.touch for a in found if a.order_id == order} == {ev.TOUCH_TYPE_CLICK}
    print(f"credited {waited:.1f} s after the first input (join grace {JOIN_GRACE_S:.0f} s)")
    assert waited < JOIN_GRACE_S / 2
    # Nothing else comes for these orders (a second refund, a withdrawal).
    later = await ads.records(
        "ads.attributions.v1", ev.Attribution, 4, lambda a: a.order_id in {order, view_order}, 3
    )
    assert len(later) == 3
    # Both observed (more only if a loaded machine made the worker re-apply a batch).
    assert ads.service.metric("shopstream_ads_attribution_lag_seconds_count", {}) >= 2


async def test_a_credit_moved_by_a_late_click_takes_the_refunds_along(ads: AdsWorld) -> None:
    """A refund booked on a view credit, then a click that precedes the order arrives late and
    takes the credit: the click is credited net of the refund and the view nets to zero, as
    when the click came first (the order kill -9 recovery may replay inputs in)."""
    campaign = await ads.campaign("seller-move")
    t = NOW - timedelta(hours=5)
    view = await ads.impression("b-move", campaign, t - timedelta(hours=2))
    order = await ads.paid_order("b-move", 3_000, t)
    await ads.refund("b-move", order, 1_000, 3_000, t + timedelta(hours=1))
    booked = await ads.attributions({order}, expect=2)
    assert sorted((a.touch_id, a.amount.amount_minor) for a in booked) == sorted(
        [(view, 3_000), (view, -1_000)]
    )

    click = await ads.click("b-move", campaign, t - timedelta(hours=1))

    async def net_per_touch() -> dict[str, int] | None:
        records = await ads.records(
            "ads.attributions.v1", ev.Attribution, 1_000, lambda a: a.order_id == order, 2
        )
        net: dict[str, int] = {}
        for a in records:
            net[a.touch_id] = net.get(a.touch_id, 0) + a.amount.amount_minor
        return net if net.get(click) else None

    net = await eventually(net_per_touch)
    assert net[click] == 2_000
    assert all(amount == 0 for touch, amount in net.items() if touch != click), net


async def test_a_credit_that_moves_back_is_a_new_credit(ads: AdsWorld) -> None:
    """A view credited; a later view and then a click take the credit; the click is voided
    (an order paid a second after it) and the credit goes back to the first view. That second
    credit to the same touch must not look like the first (the same event id would be dropped
    as a duplicate by every subscriber, and the order would end with no credit)."""
    campaign = await ads.campaign("seller-back")
    t = NOW - timedelta(hours=5)
    first_view = await ads.impression("b-back", campaign, t - timedelta(hours=2))
    order = await ads.paid_order("b-back", 4_000, t)
    assert [a.touch_id for a in await ads.attributions({order}, expect=1)] == [first_view]

    # The fast order names the click before it comes: held until the click joins, then it
    # voids the click (and taints the impression the click came through).
    click_at = t - timedelta(hours=1)
    click_id = ads.next_id("clk")
    fast = await ads.paid_order("b-back", 1_000, click_at + timedelta(seconds=1), click_id=click_id)
    await ads.click("b-back", campaign, click_at, click_id=click_id)

    async def net_per_touch() -> dict[str, int] | None:
        records = await ads.records(
            "ads.attributions.v1", ev.Attribution, 1_000, lambda a: a.order_id == order, 2
        )
        if not any(a.touch_id == click_id and a.withdrawn for a in records):
            return None
        net: dict[str, int] = {}
        for a in records:
            net[a.touch_id] = net.get(a.touch_id, 0) + a.amount.amount_minor
        credits = [
            a.attribution_id for a in records if a.touch_id == first_view and not a.withdrawn
        ]
        return net if len(credits) == 2 else None

    net = await eventually(net_per_touch)
    assert net[first_view] == 4_000, net
    assert all(amount == 0 for touch, amount in net.items() if touch != first_view), net
    assert net.get(click_id) == 0, net
    (fast_credit,) = await ads.attributions({fast}, expect=1)
    assert fast_credit.touch_id == first_view
