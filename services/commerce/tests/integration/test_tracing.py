"""With tracing on, one PlaceOrder is one trace: commerce's gRPC call, the outbox publish of
OrderPlaced and catalog's handling of it (the reservation), linked by the records' traceparent;
a caller's tracestate travels with it. Spans go to an in-process exporter."""

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from commerce_steps import Shop, own_commerce_name
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from shopstream.commerce.v1 import commerce_service_pb2 as pb
from shopstream.commerce.v1 import order_pb2
from shopstream_platform.settings import KafkaSettings
from shopstream_platform.tracing import configure_tracing, shutdown_tracing

pytestmark = pytest.mark.integration

PLACE_ORDER = "shopstream.commerce.v1.CommerceService/PlaceOrder"


@pytest.fixture
def commerce_overrides(kafka_settings: KafkaSettings) -> dict[str, Any]:
    """A commerce of this test's own: not sharing consumer groups with a running local stack."""
    return {"service_name": own_commerce_name(kafka_settings)}


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    configure_tracing("shop", exporter, batch=False)
    yield exporter
    shutdown_tracing()


def _one(found: list[ReadableSpan], what: str) -> ReadableSpan:
    assert len(found) == 1, (what, [(s.name, dict(s.attributes or {})) for s in found])
    return found[0]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_one_place_order_is_one_trace_across_commerce_and_catalog(
    spans: InMemorySpanExporter, shop: Shop, ids: Callable[[str], str]
) -> None:
    seller, buyer = ids("seller"), ids("buyer")
    product = await shop.listed_product(seller)
    sku = product.skus[0].sku_id
    await shop.place(buyer, sku, key=ids("warm-up"))  # commerce knows the SKU from here on
    spans.clear()

    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    placed = await shop.stub.PlaceOrder(
        pb.PlaceOrderRequest(
            buyer_id=buyer,
            idempotency_key=ids("checkout"),
            lines=[pb.OrderLineRequest(sku_id=sku, quantity=1)],
        ),
        metadata=(*shop.auth("buyer", buyer), ("traceparent", caller), ("tracestate", "vendor=42")),
        timeout=10,
    )
    await shop.wait_state(placed.order, order_pb2.ORDER_STATE_RESERVED)

    trace_id = int(caller.split("-")[1], 16)

    def traced() -> list[ReadableSpan]:
        return [s for s in spans.get_finished_spans() if s.context.trace_id == trace_id]

    def event_type(span: ReadableSpan) -> object:
        return (span.attributes or {}).get("cloudevents.event_type")

    # The reply chain ends with commerce publishing OrderReserved (after the state we waited for).
    deadline = asyncio.get_running_loop().time() + 10
    while not any(
        s.kind == SpanKind.PRODUCER and event_type(s) == "shopstream.commerce.v1.OrderReserved"
        for s in traced()
    ):
        assert asyncio.get_running_loop().time() < deadline, [(s.name, s.kind) for s in traced()]
        await asyncio.sleep(0.05)
    mine = traced()

    server = _one(
        [s for s in mine if s.name == PLACE_ORDER and s.kind == SpanKind.SERVER], "PlaceOrder"
    )
    assert server.parent is not None and server.parent.span_id == int(caller.split("-")[2], 16)
    assert server.status.status_code != StatusCode.ERROR
    assert server.context.trace_state.get("vendor") == "42"

    publish = _one(
        [
            s
            for s in mine
            if s.kind == SpanKind.PRODUCER and event_type(s) == "shopstream.commerce.v1.OrderPlaced"
        ],
        "outbox publish of OrderPlaced",
    )
    assert publish.name == "commerce.orders.v1 publish"
    assert publish.parent is not None and publish.parent.span_id == server.context.span_id

    catalog_group = f"{shop.catalog.runtime.name}.orders"
    handled = _one(
        [
            s
            for s in mine
            if s.name == "commerce.orders.v1 process"
            and (s.attributes or {}).get("messaging.consumer.group.name") == catalog_group
            and (s.attributes or {}).get("cloudevents.event_type")
            == "shopstream.commerce.v1.OrderPlaced"
        ],
        "catalog's handling of OrderPlaced",
    )
    assert handled.kind == SpanKind.CONSUMER
    assert handled.parent is not None and handled.parent.span_id == server.context.span_id
    assert (handled.attributes or {})["shopstream.outcome"] == "processed"
    assert handled.context.trace_state.get("vendor") == "42"
    # Catalog's answer (its outbox publish) continues the trace under that handling.
    assert any(
        s.kind == SpanKind.PRODUCER
        and s.parent is not None
        and s.parent.span_id == handled.context.span_id
        for s in mine
    ), [(s.name, s.kind) for s in mine]
