"""A creator's ad-credited sales reach sellers, advertisers and creators only released."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from creator_steps import AUDIT, Market

pytestmark = pytest.mark.integration
CALLERS = [("seller", "brand-1"), ("advertiser", "brand-1"), ("admin", "ops")]


async def test_ad_sales_are_withheld_below_k_and_noised_above_exact_only_for_audit(
    market: Market, ids: Callable[[str], str]
) -> None:
    few, many = ids("few"), ids("many")
    for creator in (few, many):
        await market.profile(creator, 20_000)
    for i in range(2):
        order = ids("ord")
        await market.sale(few, order, 10_000)
        await market.attribution([few], order, 10_000, touch=f"c{i}")
    for i in range(8):
        order = ids("ord")
        await market.sale(many, order, 10_000)
        await market.attribution([many], order, 10_000, touch=f"m{i}")

    async def counted() -> None:
        assert (await market.creator(few)).creator.ad_sales.orders == 2
        assert (await market.creator(many)).creator.ad_sales.orders == 8

    await market.eventually(counted)
    exact = (await market.creator(many)).creator.ad_sales
    assert not exact.noised and not exact.withheld
    callers = [*CALLERS, ("creator", few), ("creator", many)]
    for caller in callers:
        hidden = (await market.creator(few, as_=caller)).creator.ad_sales
        # 2 orders < k = 5: withheld, nothing of them shows (organic share included).
        assert hidden.withheld and hidden.noised
        assert (hidden.orders, hidden.gmv.amount_minor, hidden.organic_share) == (0, 0, 0.0)
        shown = (await market.creator(many, as_=caller)).creator.ad_sales
        assert shown.noised and not shown.withheld
        # Asked again (by anyone) in the same epoch: the same answer, never a fresh draw.
        for _ in range(3):
            again = (await market.creator(many, as_=caller)).creator.ad_sales
            assert again == shown
        print(
            f"{caller[0]}: withheld {hidden.withheld}; released orders {shown.orders} "
            f"gmv {shown.gmv.amount_minor} (exact {exact.orders}, {exact.gmv.amount_minor})"
        )
    audit = (await market.creator(few, as_=AUDIT)).creator.ad_sales
    assert (audit.orders, audit.withheld, audit.noised) == (2, False, False)
