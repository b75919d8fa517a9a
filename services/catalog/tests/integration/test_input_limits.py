"""No input can stop the catalog (issue 15, 2.7): bounded fields and numbers at the API, and a
deterministic failure in the order consumer goes to the DLQ while the service keeps serving."""

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from catalog_steps import RunningCatalog, create_product, gbp, order, publish_placed, register
from confluent_kafka import Message
from sqlalchemy import update

from shopstream.catalog.v1 import catalog_service_pb2 as pb
from shopstream.commerce.v1 import order_events_pb2
from shopstream.common.v1 import paging_pb2
from shopstream_catalog.domain import validation
from shopstream_catalog.store.tables import stock
from shopstream_platform.kafka.cloudevents import headers_dict
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.settings import KafkaSettings
from shopstream_platform.testing import read_all_async

pytestmark = pytest.mark.integration

INT64_MAX = 2**63 - 1
ORDERS = "commerce.orders.v1"


async def answer_to(catalog: RunningCatalog, kafka: KafkaSettings, order_id: str) -> str:
    """The ce_type this catalog (not another one on the shared broker) answered an order with."""
    source = f"shopstream/{catalog.runtime.name}"

    def ours(record: Message) -> bool:
        headers = headers_dict(record.headers())
        return (record.key() or b"").decode() == order_id and headers["ce_source"] == source

    [record] = await read_all_async(
        kafka, "catalog.stock.v1", expect=1, timeout_s=60, match=ours, since_ms=catalog.since_ms
    )
    return headers_dict(record.headers())["ce_type"]


async def invalid(call: Any) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value.details()
    return error.value.details() or ""


async def test_stock_adjustments_near_int64_are_invalid_argument(
    catalog: RunningCatalog, ids: Callable[[str], str]
) -> None:
    seller = ids("seller")
    await register(catalog, seller)
    product = await create_product(catalog, seller, stock=10)
    sku = product.skus[0].sku_id
    auth = catalog.auth("seller", seller)

    def adjust(delta: int, warehouse: str = "w1") -> Any:
        return catalog.stub.AdjustStock(
            pb.AdjustStockRequest(sku_id=sku, warehouse_id=warehouse, delta=delta),
            metadata=auth,
            timeout=10,
        )

    for delta in (INT64_MAX - 100, INT64_MAX, -(2**63), validation.MAX_STOCK + 1):
        assert (await invalid(adjust(delta))).startswith("delta:")
    # Within range, but on-hand would pass the bound: refused too, naming the field.
    assert "would exceed" in await invalid(adjust(validation.MAX_STOCK))
    # Up to the bound is fine; the stock is unchanged by the refused calls.
    reply = await adjust(validation.MAX_STOCK - 10)
    assert reply.stock.on_hand == validation.MAX_STOCK
    # New warehouses per SKU are bounded too (each is a row in every product event).
    for i in range(validation.MAX_WAREHOUSES - 1):
        await adjust(1, f"wh{i}")
    assert (await invalid(adjust(1, "one-too-many"))).startswith("warehouse_id:")


async def test_oversized_fields_are_invalid_argument_naming_the_field(
    catalog: RunningCatalog, ids: Callable[[str], str]
) -> None:
    seller = ids("seller")
    await register(catalog, seller)
    auth = catalog.auth("seller", seller)

    def create(skus: list[pb.NewSku], **fields: Any) -> Any:
        return catalog.stub.CreateProduct(
            pb.CreateProductRequest(
                seller_id=seller,
                title=fields.pop("title", "Scarf"),
                category_id="fashion",
                attributes={"material": "silk"},
                skus=skus,
                **fields,
            ),
            metadata=auth,
            timeout=10,
        )

    def sku(code: str = "a", **fields: Any) -> pb.NewSku:
        return pb.NewSku(sku_code=code, price=fields.pop("price", gbp(100)), **fields)

    long_value = {"colour": "r" * (validation.MAX_VARIANT_VALUE + 1)}
    assert (await invalid(create([sku(variant_attributes=long_value)]))).startswith(
        "skus[0].variant_attributes[colour]:"
    )
    many = {f"k{i}": "v" for i in range(validation.MAX_VARIANT_ATTRIBUTES + 1)}
    assert (await invalid(create([sku(variant_attributes=many)]))).startswith(
        "skus[0].variant_attributes:"
    )
    # Every SKU within its own bounds, but together an event of about half a megabyte: the
    # listing as a whole is refused, naming the part that made it big.
    wide = {f"attribute-{i}": "😀" * validation.MAX_VARIANT_VALUE for i in range(10)}
    skus = [sku(f"c{i}", variant_attributes=wide) for i in range(validation.MAX_SKUS)]
    details = await invalid(create(skus))
    assert details.startswith("skus:") and "-byte limit" in details
    assert (await invalid(create([sku()], brand="b" * 101))).startswith("brand:")
    assert (await invalid(create([sku()], idempotency_key="k" * 1000))).startswith(
        "idempotency_key:"
    )
    assert (await invalid(create([sku(price=gbp(2**62))]))).startswith(
        "skus[0].price.amount_minor:"
    )

    product = await create_product(catalog, seller, approve=False)
    megabyte = "x" * 1_000_000
    review = catalog.stub.ReviewListing(
        pb.ReviewListingRequest(
            product_id=product.product_id, decision=pb.REVIEW_DECISION_REJECT, reason=megabyte
        ),
        metadata=catalog.auth("admin", "admin-1"),
        timeout=10,
    )
    assert (await invalid(review)).startswith("reason:")
    adjust = catalog.stub.AdjustStock(
        pb.AdjustStockRequest(
            sku_id=product.skus[0].sku_id, warehouse_id="w1", delta=1, reason=megabyte
        ),
        metadata=auth,
        timeout=10,
    )
    assert (await invalid(adjust)).startswith("reason:")
    search = catalog.stub.SearchProducts(pb.SearchProductsRequest(text=megabyte), timeout=10)
    assert (await invalid(search)).startswith("text:")
    negative = catalog.stub.SearchProducts(
        pb.SearchProductsRequest(page=paging_pb2.PageRequest(page_size=-5)), timeout=10
    )
    assert (await invalid(negative)).startswith("page.page_size:")


async def test_undecodable_request_body_is_invalid_argument(catalog: RunningCatalog) -> None:
    raw = catalog.channel.unary_unary(
        "/shopstream.catalog.v1.CatalogService/GetProduct",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    # GetProductRequest.product_id (field 1) holding bytes that are not UTF-8.
    details = await invalid(raw(b"\x0a\x02\xc3\x28", timeout=10))
    assert details.startswith("request:")


async def test_a_deterministic_failure_in_the_order_consumer_is_dead_lettered_and_it_moves_on(
    catalog: RunningCatalog, kafka_settings: KafkaSettings, ids: Callable[[str], str]
) -> None:
    """The defect of issue 15: stock near int64 made a release overflow the database sum; the
    error was retried as transient, and the service exited, restarted and exited again."""
    seller = ids("seller")
    await register(catalog, seller)
    product = await create_product(catalog, seller, stock=10)
    sku = product.skus[0].sku_id
    await catalog.stub.AdjustStock(
        pb.AdjustStockRequest(sku_id=sku, warehouse_id="w2", delta=5),
        metadata=catalog.auth("seller", seller),
        timeout=10,
    )
    producer = EventProducer(kafka_settings, "shopstream/commerce-test")
    poisoned = order(ids("ord"), [(sku, product.product_id, seller, 1)])
    await publish_placed(producer, poisoned)
    reserved = "shopstream.catalog.v1.StockReserved"
    assert await answer_to(catalog, kafka_settings, poisoned.order_id) == reserved
    # Stock rows from before the API had bounds: their sum no longer fits in a BIGINT.
    async with catalog.app.db.transaction() as session:
        await session.execute(update(stock).where(stock.c.sku_id == sku).values(on_hand=INT64_MAX))
    await producer.publish_and_wait(
        ORDERS, poisoned.order_id, order_events_pb2.OrderCancelled(order=poisoned)
    )
    # The consumer goes on: a later order for another product is reserved.
    other = await create_product(catalog, seller, stock=3)
    healthy = order(ids("ord"), [(other.skus[0].sku_id, other.product_id, seller, 1)])
    await publish_placed(producer, healthy)
    assert await answer_to(catalog, kafka_settings, healthy.order_id) == reserved

    group = f"{catalog.runtime.name}.orders"

    def ours(record: Message) -> bool:
        headers = headers_dict(record.headers())
        key = (record.key() or b"").decode()
        return key == poisoned.order_id and headers.get("dlq_consumer_group") == group

    [dead] = await read_all_async(
        kafka_settings,
        "commerce.orders.v1.dlq",
        expect=1,
        timeout_s=30,
        match=ours,
        since_ms=catalog.since_ms,
    )
    headers = headers_dict(dead.headers())
    assert headers["ce_type"] == "shopstream.commerce.v1.OrderCancelled"
    assert headers["dlq_error_type"] in {"OperationalError", "DataError", "DBAPIError"}
    assert (
        "overflow" in headers["dlq_error_message"]
        or "out of range" in (headers["dlq_error_message"])
    )
    # Dead-lettered at the first attempt: no retries, no crash; the service still serves.
    labels = {"service": catalog.runtime.name, "topic": ORDERS, "group": group}
    dead_lettered = {**labels, "outcome": "dead_lettered"}
    assert catalog.metric("shopstream_events_consumed_total", dead_lettered) >= 1
    assert catalog.metric("shopstream_event_handler_retries_total", labels) == 0
    assert catalog.runtime.ready.is_set()
    producer.close()
