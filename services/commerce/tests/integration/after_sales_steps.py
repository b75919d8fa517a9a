"""After-sales steps the tests share: the order's events on a topic, confirmed refunds, the
sandbox provider's records, a paid order, stock waited for."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from commerce_steps import Shop, call_kwargs

from shopstream.commerce.v1 import commerce_service_pb2 as pb
from shopstream.commerce.v1 import order_pb2
from shopstream.commerce.v1 import payment_events_pb2 as pev
from shopstream_commerce.payments.provider import SandboxProvider
from shopstream_platform.kafka.cloudevents import headers_dict
from shopstream_platform.testing import read_since

OS = order_pb2


def events(shop: Shop, topic: str, module: Any, order_id: str, since_ms: int) -> list[Any]:
    """The order's records on `topic` since the test began, decoded by their ce_type."""
    found = []
    for record in read_since(shop.commerce.runtime.settings.kafka, topic, since_ms):
        if record.key() != order_id.encode():
            continue
        kind = headers_dict(record.headers())["ce_type"].rsplit(".", 1)[-1]
        found.append(getattr(module, kind).FromString(record.value() or b""))
    return found


async def refunds_confirmed(shop: Shop, order_id: str, since_ms: int, n: int) -> list[Any]:
    for _ in range(100):
        got = [
            e
            for e in events(shop, "commerce.payments.v1", pev, order_id, since_ms)
            if isinstance(e, pev.PaymentRefunded)
        ]
        if len(got) >= n:
            return got
        await asyncio.sleep(0.2)
    raise AssertionError(f"{order_id}: fewer than {n} PaymentRefunded")


def provider(shop: Shop) -> SandboxProvider:
    found = shop.commerce.wired.orders.payments.provider
    assert isinstance(found, SandboxProvider)
    return found


async def fails(call: Any, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await call
    assert failed.value.code() == code, failed.value.details()
    return failed.value.details() or ""


async def paid(shop: Shop, buyer: str, sku: str, quantity: int, key: str, **attr: str) -> Any:
    order = await shop.place(buyer, sku, quantity=quantity, key=key, **attr)
    await shop.wait_state(order, OS.ORDER_STATE_RESERVED)
    return (
        await shop.stub.PayOrder(
            pb.PayOrderRequest(order_id=order.order_id, card_token="tok_visa"),
            **call_kwargs(shop, "buyer", buyer),
        )
    ).order


async def available(shop: Shop, product_id: str, units: int) -> int:
    for _ in range(200):
        if (now := await shop.available(product_id)) == units:
            return now
        await asyncio.sleep(0.05)
    return await shop.available(product_id)
