"""Every commerce RPC, 300 hostile requests each (edge numbers, unknown enums, invalid UTF-8,
truncated and random bodies, every role; for the order and live methods half are a valid
request about a real order with one field made hostile, so they reach the saga): no INTERNAL or
UNKNOWN, and health stays SERVING."""

from typing import Any

import grpc
import pytest
from commerce_steps import Shop, own_commerce_name
from google.protobuf.message import Message

from shopstream.commerce.v1 import commerce_service_pb2 as pb
from shopstream.commerce.v1 import order_pb2
from shopstream_platform.fuzz import fuzz_service, health_status
from shopstream_platform.grpc.auth import ROLES
from shopstream_platform.settings import KafkaSettings

pytestmark = pytest.mark.integration


@pytest.fixture
def commerce_overrides(kafka_settings: KafkaSettings) -> dict[str, Any]:
    """A commerce of this test's own: not sharing consumer groups with a running local stack."""
    return {"service_name": own_commerce_name(kafka_settings)}


async def _seeds(shop: Shop) -> dict[str, list[Message]]:
    """Valid requests about a real product, a reserved order and a live session."""
    seller, buyer, creator = "fuzz-seller", "fuzz-buyer", "fuzz-creator"
    product = await shop.listed_product(seller, stock=1_000)
    sku = product.skus[0].sku_id
    order = await shop.place(buyer, sku, key="fuzz-first")
    await shop.wait_state(order, order_pb2.ORDER_STATE_RESERVED)
    line = order.lines[0].line_id
    place = pb.PlaceOrderRequest(
        buyer_id=buyer,
        idempotency_key="fuzz-order",
        lines=[
            pb.OrderLineRequest(
                sku_id=sku,
                quantity=1,
                attribution=order_pb2.AttributionContext(creator_id=creator),
            )
        ],
    )
    return {
        "PlaceOrder": [place],
        "GetOrder": [pb.GetOrderRequest(order_id=order.order_id)],
        "ListOrders": [
            pb.ListOrdersRequest(buyer_id=buyer),
            pb.ListOrdersRequest(seller_id=seller),
        ],
        "PayOrder": [pb.PayOrderRequest(order_id=order.order_id, card_token="tok_visa")],
        "CancelOrder": [pb.CancelOrderRequest(order_id=order.order_id, reason="changed my mind")],
        "ShipOrder": [pb.ShipOrderRequest(order_id=order.order_id, tracking_number="TRK-1")],
        "ConfirmDelivery": [pb.ConfirmDeliveryRequest(order_id=order.order_id)],
        "RequestRefund": [
            pb.RequestRefundRequest(
                order_id=order.order_id,
                lines=[pb.RefundLineRequest(line_id=line, quantity=1)],
                reason="broken",
            )
        ],
        "StartLiveSession": [
            pb.StartLiveSessionRequest(
                creator_id=creator, title="Live", pinned_product_ids=[product.product_id]
            )
        ],
        "SetCommissionRate": [
            pb.SetCommissionRateRequest(
                seller_id=seller, product_id=product.product_id, rate_bps=1_000
            )
        ],
        "GetCreatorEarnings": [pb.GetCreatorEarningsRequest(creator_id=creator)],
    }


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_no_request_makes_commerce_fail(shop: Shop) -> None:
    seeds = await _seeds(shop)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{shop.commerce.port}") as channel:
        report = await fuzz_service(
            channel,
            "shopstream.commerce.v1.CommerceService",
            shop.tokens.mint,
            sorted(ROLES),
            per_method=300,
            seeds=seeds,
        )
        print(report.summary())
        assert not report.failures, report.summary()
        assert all(report.calls(m) == 300 for m, _ in report.codes)
        assert await health_status(channel) == "SERVING"
