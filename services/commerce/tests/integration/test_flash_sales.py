"""A LIVE flash sale under 200 concurrent orders, through gRPC, catalog and commerce.live.v1:
exactly the sale's 20 units are sold, no buyer gets more than 2, an order cancelled before
payment gives its unit back, and every sold unit is reserved in catalog."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import grpc
import pytest
from commerce_steps import Shop, call_kwargs

from shopstream.commerce.v1 import commerce_service_pb2 as pb
from shopstream.commerce.v1 import live_pb2, order_pb2
from shopstream.common.v1 import money_pb2
from shopstream_platform.kafka.cloudevents import headers_dict
from shopstream_platform.testing import read_since

pytestmark = pytest.mark.integration

OS = order_pb2
BUYERS, ORDERS_EACH = 40, 5  # 200 orders


async def test_a_flash_sale_of_20_with_a_limit_of_2_under_200_concurrent_orders(
    shop: Shop, ids: Callable[[str], str]
) -> None:
    since_ms = int(time.time() * 1000) - 1_000
    seller, creator = ids("seller"), ids("creator")
    product = await shop.listed_product(seller, stock=100, price=2_000)
    sku = product.skus[0].sku_id
    await shop.place(ids("warm-up"), sku)  # commerce knows the SKU
    live = await shop.stub.StartLiveSession(
        pb.StartLiveSessionRequest(
            creator_id=creator, title="Friday deals", pinned_product_ids=[product.product_id]
        ),
        **call_kwargs(shop, "creator", creator),
    )
    session_id = live.session.live_session_id
    terms = pb.StartFlashSaleRequest(
        live_session_id=session_id,
        sku_id=sku,
        deal_price=money_pb2.Money(amount_minor=1_000, currency="GBP"),
        total_units=20,
        per_buyer_limit=2,
        countdown_s=10,
        duration_s=120,
    )
    with pytest.raises(grpc.aio.AioRpcError) as not_the_seller:
        await shop.stub.StartFlashSale(terms, **call_kwargs(shop, "seller", ids("other")))
    assert not_the_seller.value.code() == grpc.StatusCode.PERMISSION_DENIED
    sale = (await shop.stub.StartFlashSale(terms, **call_kwargs(shop, "seller", seller))).sale
    assert (sale.total_units, sale.sold_units, sale.per_buyer_limit) == (20, 0, 2)
    # The countdown: until it ends the deal is not open.
    await asyncio.sleep(max(0.0, sale.starts_at.seconds + sale.starts_at.nanos / 1e9 - time.time()))
    await asyncio.sleep(0.2)

    buyers = [ids("buyer") for _ in range(BUYERS)]
    refused: Counter[str] = Counter()

    async def order(buyer: str, n: int) -> order_pb2.Order | None:
        request = pb.PlaceOrderRequest(
            buyer_id=buyer,
            idempotency_key=f"flash-{n}",
            lines=[
                pb.OrderLineRequest(
                    sku_id=sku,
                    quantity=2 if n == 2 else 1,
                    attribution=order_pb2.AttributionContext(
                        creator_id=creator, live_session_id=session_id
                    ),
                )
            ],
        )
        try:
            placed = await shop.stub.PlaceOrder(
                request, metadata=shop.auth("buyer", buyer), timeout=60
            )
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.FAILED_PRECONDITION, exc.details()
            refused["units left" if "units left" in (exc.details() or "") else "limit"] += 1
            return None
        return placed.order

    started = time.monotonic()
    results = await asyncio.gather(
        *(order(buyer, n) for buyer in buyers for n in range(ORDERS_EACH))
    )
    took = time.monotonic() - started
    placed = [o for o in results if o is not None]
    units = Counter[str]()
    for o in placed:
        assert o.lines[0].unit_price.amount_minor == 1_000  # the deal price
        units[o.buyer_id] += o.lines[0].quantity
    print(
        f"{len(results)} concurrent orders in {took:.1f} s: {len(placed)} placed, "
        f"{sum(units.values())} units; refused {dict(refused)}; most per buyer {max(units.values())}"
    )
    assert sum(units.values()) == 20
    assert max(units.values()) <= 2
    assert refused["limit"] > 0  # buyers asking for more than 2 were turned away
    assert (
        await shop.stub.GetFlashSale(
            pb.GetFlashSaleRequest(flash_sale_id=sale.flash_sale_id), timeout=10
        )
    ).sale.sold_units == 20

    # A placed order cancelled before payment gives its unit back; a new buyer takes it.
    for o in placed:
        await shop.wait_state(o, OS.ORDER_STATE_RESERVED)
    gone = next(o for o in placed if o.lines[0].quantity == 1)
    await shop.stub.CancelOrder(
        pb.CancelOrderRequest(order_id=gone.order_id), **call_kwargs(shop, "buyer", gone.buyer_id)
    )
    late = await order(ids("late-buyer"), 0)
    assert late is not None and late.lines[0].quantity == 1
    paid = [o for o in placed if o.order_id != gone.order_id] + [late]
    await shop.wait_state(late, OS.ORDER_STATE_RESERVED)
    for o in paid:
        await shop.stub.PayOrder(
            pb.PayOrderRequest(order_id=o.order_id, card_token="tok_visa"),
            **call_kwargs(shop, "buyer", o.buyer_id),
        )
    assert sum(o.lines[0].quantity for o in paid) == 20
    final = (
        await shop.stub.GetFlashSale(
            pb.GetFlashSaleRequest(flash_sale_id=sale.flash_sale_id), timeout=10
        )
    ).sale
    assert final.sold_units == 20
    # Catalog holds exactly the warm-up's unit and the sale's 20.
    for _ in range(100):
        if await shop.available(product.product_id) == 100 - 1 - 20:
            break
        await asyncio.sleep(0.1)
    assert await shop.available(product.product_id) == 79

    await shop.commerce.published()
    announced = [
        live_pb2.FlashSaleStarted.FromString(r.value() or b"")
        for r in read_since(shop.commerce.runtime.settings.kafka, "commerce.live.v1", since_ms)
        if r.key() == session_id.encode()
        and headers_dict(r.headers())["ce_type"] == "shopstream.commerce.v1.FlashSaleStarted"
    ]
    assert [a.sale.flash_sale_id for a in announced] == [sale.flash_sale_id]
