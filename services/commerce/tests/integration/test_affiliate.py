"""Affiliate depth through gRPC and commerce.commissions.v1: a targeted rate overrides the open
rate for that creator only, Shop Ads sales earn their own rate, and a cut does not touch the sales
of creators who promoted the product within the lock period (they get an advance notice)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
import pytest
from commerce_steps import Shop, call_kwargs

from shopstream.commerce.v1 import commerce_service_pb2 as pb
from shopstream.commerce.v1 import commissions_pb2 as cpb
from shopstream.commerce.v1 import order_pb2
from shopstream_platform.kafka.cloudevents import headers_dict
from shopstream_platform.testing import read_since

pytestmark = pytest.mark.integration

OS = order_pb2


async def test_targeted_and_shop_ads_rates_and_a_cut_that_spares_promoting_creators(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    since_ms = int(time.time() * 1000) - 1_000
    seller, buyer = ids("seller"), ids("buyer")
    star, promoter, newcomer = ids("star"), ids("promoter"), ids("newcomer")
    as_seller = call_kwargs(shop, "seller", seller)
    product = await shop.listed_product(seller, stock=50, price=1_000)
    sku = product.skus[0].sku_id

    async def set_rate(
        bps: int, creator: str = "", ads: bool = False
    ) -> pb.SetCommissionRateResponse:
        request = pb.SetCommissionRateRequest(
            seller_id=seller,
            product_id=product.product_id,
            rate_bps=bps,
            creator_id=creator,
            shop_ads=ads,
        )
        for _ in range(100):  # commerce hears of a new product a moment after catalog made it
            try:
                return await shop.stub.SetCommissionRate(request, **as_seller)
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.NOT_FOUND:
                    raise
                await asyncio.sleep(0.1)
        raise AssertionError("commerce never learned of the product")

    async def sale(key: str, **attribution: str) -> None:
        order = await shop.place(buyer, sku, key=key, **attribution)
        await shop.wait_state(order, OS.ORDER_STATE_RESERVED)
        await shop.stub.PayOrder(
            pb.PayOrderRequest(order_id=order.order_id, card_token="tok_visa"),
            **call_kwargs(shop, "buyer", buyer),
        )

    async def accruals(creator: str) -> list[int]:
        earnings = await shop.stub.GetCreatorEarnings(
            pb.GetCreatorEarningsRequest(creator_id=creator),
            **call_kwargs(shop, "creator", creator),
        )
        return sorted(
            e.amount.amount_minor
            for e in earnings.entries
            if e.kind == cpb.LEDGER_ENTRY_KIND_ACCRUAL
        )

    assert (await set_rate(1_000)).previous_rate_bps == 0  # open: 10%
    targeted = await set_rate(2_500, creator=star)  # star: 25%, others keep 10%
    assert targeted.previous_rate_bps == 1_000
    assert (await set_rate(300, ads=True)).previous_rate_bps == 1_000  # Shop Ads: 3%
    with pytest.raises(grpc.aio.AioRpcError) as both:
        await set_rate(100, creator=star, ads=True)
    assert both.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    await sale("star-1", creator_id=star)
    await sale("promoter-1", creator_id=promoter)
    await sale("promoter-ad", creator_id=promoter, ad_click_id="clk-1")
    assert await accruals(star) == [250]
    assert await accruals(promoter) == [30, 100]

    # The open rate is cut to 4%: the promoter sold within the lock period and keeps 10%; the
    # star's targeted 25% is untouched (no lock needed); a newcomer gets 4% at once.
    cut = await set_rate(400)
    assert cut.previous_rate_bps == 1_000
    assert list(cut.locked_creator_ids) == [promoter]
    assert cut.locked_until_unix >= int(time.time()) + 29 * 86_400
    await sale("promoter-2", creator_id=promoter)
    await sale("star-2", creator_id=star)
    await sale("newcomer-1", creator_id=newcomer)
    assert await accruals(promoter) == [30, 100, 100]
    assert await accruals(star) == [250, 250]
    assert await accruals(newcomer) == [40]

    # The promoter got an advance notice on commerce.commissions.v1 (key: creator id).
    await shop.commerce.published()
    notices = []
    for record in read_since(
        shop.commerce.runtime.settings.kafka, "commerce.commissions.v1", since_ms
    ):
        kind = headers_dict(record.headers())["ce_type"].rsplit(".", 1)[-1]
        if kind == "CommissionRateCutNotice":
            notice = cpb.CommissionRateCutNotice.FromString(record.value() or b"")
            if notice.product_id == product.product_id:
                notices.append((record.key(), notice))
    assert len(notices) == 1
    key, notice = notices[0]
    assert key == promoter.encode()
    assert (notice.creator_id, notice.rate_bps, notice.locked_rate_bps) == (promoter, 400, 1_000)
    assert notice.locked_until.seconds == cut.locked_until_unix


async def test_an_open_rate_that_requires_approval_pays_only_approved_creators(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    since_ms = int(time.time() * 1000) - 1_000
    seller, buyer = ids("seller"), ids("buyer")
    waiting, approved, named = ids("waiting"), ids("approved"), ids("named")
    as_seller = call_kwargs(shop, "seller", seller)
    product = await shop.listed_product(seller, stock=20, price=1_000)
    sku = product.skus[0].sku_id
    await shop.place(buyer, sku, key="warm-up")  # commerce knows the product

    async def set_rate(bps: int, **scope: object) -> None:
        await shop.stub.SetCommissionRate(
            pb.SetCommissionRateRequest(
                seller_id=seller, product_id=product.product_id, rate_bps=bps, **scope
            ),
            **as_seller,
        )

    await set_rate(1_000, require_approval=True)
    await set_rate(1_500, creator_id=named)  # targeted: no approval needed
    with pytest.raises(grpc.aio.AioRpcError) as scoped:
        await set_rate(1_000, creator_id=named, require_approval=True)
    assert scoped.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await shop.stub.ApproveCreator(
        pb.ApproveCreatorRequest(
            seller_id=seller, product_id=product.product_id, creator_id=approved
        ),
        **as_seller,
    )
    with pytest.raises(grpc.aio.AioRpcError) as not_theirs:
        await shop.stub.ApproveCreator(
            pb.ApproveCreatorRequest(
                seller_id=seller, product_id=product.product_id, creator_id=waiting
            ),
            **call_kwargs(shop, "seller", ids("other-seller")),
        )
    assert not_theirs.value.code() == grpc.StatusCode.PERMISSION_DENIED

    orders = {}
    for creator in (waiting, approved, named):
        order = await shop.place(buyer, sku, key=f"sale-{creator}", creator_id=creator)
        await shop.wait_state(order, OS.ORDER_STATE_RESERVED)
        await shop.stub.PayOrder(
            pb.PayOrderRequest(order_id=order.order_id, card_token="tok_visa"),
            **call_kwargs(shop, "buyer", buyer),
        )
        orders[creator] = order

    async def balance(creator: str) -> int:
        earnings = await shop.stub.GetCreatorEarnings(
            pb.GetCreatorEarningsRequest(creator_id=creator),
            **call_kwargs(shop, "creator", creator),
        )
        return earnings.balance.amount_minor

    assert await balance(waiting) == 0  # not approved: no commission
    assert await balance(approved) == 100
    assert await balance(named) == 150
    await shop.commerce.published()
    approvals = [
        cpb.CollaborationApproved.FromString(r.value() or b"")
        for r in read_since(
            shop.commerce.runtime.settings.kafka, "commerce.commissions.v1", since_ms
        )
        if headers_dict(r.headers())["ce_type"] == "shopstream.commerce.v1.CollaborationApproved"
        and r.key() == approved.encode()
    ]
    assert [(a.product_id, a.creator_id) for a in approvals] == [(product.product_id, approved)]
