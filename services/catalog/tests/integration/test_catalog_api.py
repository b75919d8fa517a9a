"""The catalog through gRPC alone: sellers, products with SKUs, search, stock, permissions."""

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from catalog_steps import RunningCatalog, create_product, gbp, register

from shopstream.catalog.v1 import catalog_pb2
from shopstream.catalog.v1 import catalog_service_pb2 as pb
from shopstream.common.v1 import paging_pb2

pytestmark = pytest.mark.integration


async def expect_code(call: Any, code: grpc.StatusCode) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    assert error.value.code() == code, error.value.details()
    return str(error.value.details())


async def test_seller_lists_a_product_with_three_skus_and_manages_it(
    catalog, ids: Callable[[str], str]
) -> None:  # type: ignore[no-untyped-def]
    seller, other = ids("seller"), ids("seller")
    await register(catalog, seller)
    await register(catalog, other)
    details = await expect_code(
        catalog.stub.RegisterSeller(
            pb.RegisterSellerRequest(seller_id=seller, display_name="again", country="GB"),
            metadata=catalog.auth("seller", seller),
            timeout=10,
        ),
        grpc.StatusCode.ALREADY_EXISTS,
    )
    assert seller in details

    word = ids("word")
    created = await create_product(
        catalog, seller, title=f"Silk scarf {word}", colours=("red", "blue", "green"), approve=False
    )
    # A new seller's first listing is held for review, with the reason.
    assert created.status == catalog_pb2.LISTING_STATUS_PENDING_REVIEW
    assert [r.code for r in created.status_reasons] == ["NEW_SELLER"]
    assert len(created.skus) == 3 and all(s.available == 10 for s in created.skus)
    search = pb.SearchProductsRequest(text=word, in_stock_only=True)
    assert not (await catalog.stub.SearchProducts(search, timeout=10)).products

    # Only an admin reviews; then the listing is searchable by text, category, price and stock.
    await expect_code(
        catalog.stub.ReviewListing(
            pb.ReviewListingRequest(
                product_id=created.product_id, decision=pb.REVIEW_DECISION_APPROVE
            ),
            metadata=catalog.auth("seller", seller),
            timeout=10,
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await catalog.stub.ReviewListing(
        pb.ReviewListingRequest(product_id=created.product_id, decision=pb.REVIEW_DECISION_APPROVE),
        metadata=catalog.auth("admin", "a1"),
        timeout=10,
    )
    found = (await catalog.stub.SearchProducts(search, timeout=10)).products
    assert [p.product_id for p in found] == [created.product_id]
    by_filters = pb.SearchProductsRequest(
        text=word,
        category_id="fashion",
        min_price_minor=1_000,
        max_price_minor=3_000,
        currency="GBP",
    )
    assert len((await catalog.stub.SearchProducts(by_filters, timeout=10)).products) == 1
    too_cheap = pb.SearchProductsRequest(text=word, max_price_minor=1_000)
    assert not (await catalog.stub.SearchProducts(too_cheap, timeout=10)).products

    # Stock adjusts; on-hand may not drop below zero/reserved.
    sku = created.skus[0].sku_id
    adjusted = await catalog.stub.AdjustStock(
        pb.AdjustStockRequest(sku_id=sku, warehouse_id="w2", delta=5, reason="delivery"),
        metadata=catalog.auth("seller", seller),
        timeout=10,
    )
    assert adjusted.stock.on_hand == 5
    product = (
        await catalog.stub.GetProduct(
            pb.GetProductRequest(product_id=created.product_id), timeout=10
        )
    ).product
    assert {s.sku_id: s.available for s in product.skus}[sku] == 15
    await expect_code(
        catalog.stub.AdjustStock(
            pb.AdjustStockRequest(sku_id=sku, warehouse_id="w1", delta=-11),
            metadata=catalog.auth("seller", seller),
            timeout=10,
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )

    # Another seller can neither edit nor restock it; no token at all is UNAUTHENTICATED.
    await expect_code(
        catalog.stub.UpdateProduct(
            pb.UpdateProductRequest(product_id=created.product_id, title="Mine now"),
            metadata=catalog.auth("seller", other),
            timeout=10,
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await expect_code(
        catalog.stub.AdjustStock(
            pb.AdjustStockRequest(sku_id=sku, warehouse_id="w1", delta=1),
            metadata=catalog.auth("seller", other),
            timeout=10,
        ),
        grpc.StatusCode.PERMISSION_DENIED,
    )
    await expect_code(
        catalog.stub.UpdateProduct(
            pb.UpdateProductRequest(product_id=created.product_id, title="x"), timeout=10
        ),
        grpc.StatusCode.UNAUTHENTICATED,
    )

    # The owner edits title and a price; stale versions are refused.
    updated = await catalog.stub.UpdateProduct(
        pb.UpdateProductRequest(
            product_id=created.product_id,
            title=f"Silk scarf deluxe {word}",
            prices=[pb.SkuPriceUpdate(sku_id=sku, price=gbp(2_500))],
            expected_version=product.version,
        ),
        metadata=catalog.auth("seller", seller),
        timeout=10,
    )
    assert updated.product.title.startswith("Silk scarf deluxe")
    assert updated.product.status == catalog_pb2.LISTING_STATUS_ACTIVE
    await expect_code(
        catalog.stub.UpdateProduct(
            pb.UpdateProductRequest(
                product_id=created.product_id, title="y", expected_version=product.version
            ),
            metadata=catalog.auth("seller", seller),
            timeout=10,
        ),
        grpc.StatusCode.ABORTED,  # a conflict: read again and retry (gRPC's guidance)
    )
    fetched = await catalog.stub.GetProduct(
        pb.GetProductRequest(product_id=created.product_id), timeout=10
    )
    assert {s.sku_id: s.price.amount_minor for s in fetched.product.skus}[sku] == 2_500


async def test_errors_name_fields_and_unknown_ids(
    catalog: RunningCatalog, ids: Callable[[str], str]
) -> None:
    seller = ids("seller")
    await register(catalog, seller)
    details = await expect_code(
        catalog.stub.CreateProduct(
            pb.CreateProductRequest(
                seller_id=seller,
                title="Scarf",
                category_id="fashion",
                skus=[pb.NewSku(sku_code="a", price=gbp(-5))],
            ),
            metadata=catalog.auth("seller", seller),
            timeout=10,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.startswith("skus[0].price.amount_minor")
    await expect_code(
        catalog.stub.GetProduct(pb.GetProductRequest(product_id="prd_missing"), timeout=10),
        grpc.StatusCode.NOT_FOUND,
    )
    batch = await catalog.stub.BatchGetProducts(
        pb.BatchGetProductsRequest(product_ids=["prd_missing"]), timeout=10
    )
    assert list(batch.missing_ids) == ["prd_missing"]
    await expect_code(
        catalog.stub.SearchProducts(
            pb.SearchProductsRequest(page=paging_pb2.PageRequest(page_token="!!not-a-token")),
            timeout=10,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )


@pytest.mark.parametrize("catalog_overrides", [{"listing": {"new_seller_review_count": 0}}])
async def test_search_pages_through_results(
    catalog: RunningCatalog, ids: Callable[[str], str]
) -> None:
    seller, word = ids("seller"), ids("word")
    await register(catalog, seller)
    made = [
        (await create_product(catalog, seller, title=f"Scarf {word} {i}")).product_id
        for i in range(5)
    ]
    seen: list[str] = []
    token = ""
    while True:
        page = await catalog.stub.SearchProducts(
            pb.SearchProductsRequest(
                text=word, page=paging_pb2.PageRequest(page_size=2, page_token=token)
            ),
            timeout=10,
        )
        seen += [p.product_id for p in page.products]
        token = page.page.next_page_token
        if not token:
            break
    assert seen == list(reversed(made))
