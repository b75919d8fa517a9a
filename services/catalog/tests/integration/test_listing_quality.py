"""Listing quality control seen from outside: held, rejected and suppressed listings."""

from collections.abc import Callable

import pytest
from catalog_steps import RunningCatalog, create_product, order, publish_placed, register

from shopstream.catalog.v1 import catalog_pb2, events_pb2
from shopstream.catalog.v1 import catalog_service_pb2 as pb
from shopstream.commerce.v1 import order_events_pb2
from shopstream_platform.kafka.cloudevents import headers_dict
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.settings import KafkaSettings
from shopstream_platform.testing import read_all_async

pytestmark = pytest.mark.integration

# Judge listings on their content here: no new-seller hold.
NO_NEW_SELLER_HOLD = [{"listing": {"new_seller_review_count": 0}}]


@pytest.mark.parametrize("catalog_overrides", NO_NEW_SELLER_HOLD)
async def test_a_tenth_of_the_category_median_is_held_with_the_reason(
    catalog: RunningCatalog, ids: Callable[[str], str]
) -> None:
    seller = ids("seller")
    await register(catalog, seller)
    # Five live listings around 50.00 make the category's median trustworthy (home: unique here).
    for price in (4_800, 5_000, 5_000, 5_200, 5_500):
        made = await create_product(
            catalog,
            seller,
            category="toys",
            attributes={"min_age": "3"},
            price=price,
            title="Wooden train",
        )
        assert made.status == catalog_pb2.LISTING_STATUS_ACTIVE
    cheap = await create_product(
        catalog,
        seller,
        category="toys",
        attributes={"min_age": "3"},
        price=500,
        title="Wooden train",
        approve=False,
    )
    assert cheap.status == catalog_pb2.LISTING_STATUS_PENDING_REVIEW
    [reason] = cheap.status_reasons
    assert reason.code == "PRICE_FAR_BELOW_MEDIAN"
    assert "10% of the category median (5000)" in reason.message

    banned = await create_product(catalog, seller, title="Luxury bag replica", approve=False)
    assert banned.status == catalog_pb2.LISTING_STATUS_REJECTED
    assert banned.status_reasons[0].code == "BANNED_TERM"
    missing = await create_product(catalog, seller, attributes={}, approve=False)
    assert missing.status == catalog_pb2.LISTING_STATUS_REJECTED
    assert "material" in missing.status_reasons[0].message


@pytest.mark.parametrize("catalog_overrides", NO_NEW_SELLER_HOLD)
async def test_refunds_past_the_threshold_suppress_the_listing(
    catalog: RunningCatalog, kafka_settings: KafkaSettings, ids: Callable[[str], str]
) -> None:
    seller, word = ids("seller"), ids("word")
    await register(catalog, seller)
    product = await create_product(catalog, seller, title=f"Phone case {word}", stock=100)
    sku = product.skus[0].sku_id
    search = pb.SearchProductsRequest(text=word)
    assert len((await catalog.stub.SearchProducts(search, timeout=10)).products) == 1

    producer = EventProducer(kafka_settings, "shopstream/commerce-test")
    orders = [order(ids("ord"), [(sku, product.product_id, seller, 1)]) for _ in range(10)]
    for o in orders:
        await publish_placed(producer, o)
    # Three refunds of ten (30%) reach the default threshold after the minimum of ten orders.
    for o in orders[:3]:
        refund = order_events_pb2.OrderRefunded(
            order=o, refund_id=ids("rf"), reason="broke in a week"
        )
        line = o.lines[0]
        refund.lines.add(
            line_id=line.line_id,
            sku_id=sku,
            product_id=product.product_id,
            seller_id=seller,
            quantity=1,
        )
        await producer.publish_and_wait("commerce.orders.v1", o.order_id, refund)
    producer.close()

    def suppressed(record) -> bool:  # type: ignore[no-untyped-def]
        if (
            headers_dict(record.headers()).get("ce_type")
            != "shopstream.catalog.v1.ListingStatusChanged"
        ):
            return False
        change = events_pb2.ListingStatusChanged.FromString(record.value())
        return (
            change.product_id == product.product_id
            and change.status == catalog_pb2.LISTING_STATUS_SUPPRESSED
        )

    [record] = await read_all_async(
        kafka_settings,
        "catalog.products.v1",
        expect=1,
        timeout_s=60,
        match=suppressed,
        since_ms=catalog.since_ms,
    )
    change = events_pb2.ListingStatusChanged.FromString(record.value() or b"")
    assert change.previous_status == catalog_pb2.LISTING_STATUS_ACTIVE
    assert change.reasons[0].code == "HIGH_REFUND_RATE"

    fetched = (
        await catalog.stub.GetProduct(
            pb.GetProductRequest(product_id=product.product_id), timeout=10
        )
    ).product
    assert fetched.status == catalog_pb2.LISTING_STATUS_SUPPRESSED
    assert "3 of 10 orders refunded" in fetched.status_reasons[0].message
    assert not (await catalog.stub.SearchProducts(search, timeout=10)).products

    quality = (
        await catalog.stub.GetSellerQuality(
            pb.GetSellerQualityRequest(seller_id=seller),
            metadata=catalog.auth("seller", seller),
            timeout=10,
        )
    ).quality
    assert quality.orders == 10 and quality.refund_rate == pytest.approx(0.3)
    assert quality.tier == catalog_pb2.QUALITY_TIER_POOR
    assert quality.suppressed_listings == 1
    assert catalog.metric("shopstream_catalog_suppressions_total", {}) == 1
