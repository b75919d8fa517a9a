"""Every catalog RPC, 300 hostile requests each (edge numbers, unknown enums, invalid UTF-8,
truncated and random bodies, every role; for most methods half are a valid request with one
field made hostile, so they reach the domain code): no INTERNAL or UNKNOWN, and health stays
SERVING."""

import uuid

import pytest
from catalog_steps import RunningCatalog, a_product_request, gbp
from google.protobuf.message import Message

from shopstream.catalog.v1 import catalog_service_pb2 as pb
from shopstream_platform.fuzz import fuzz_service, health_status
from shopstream_platform.grpc.auth import ROLES

pytestmark = pytest.mark.integration


async def _seeds(catalog: RunningCatalog) -> dict[str, list[Message]]:
    """Valid requests about a real seller and product."""
    seller = f"fuzz-seller-{uuid.uuid4().hex[:6]}"
    admin = catalog.auth("admin", "fuzz-admin")
    register = pb.RegisterSellerRequest(seller_id=seller, display_name="Fuzz", country="GB")
    await catalog.stub.RegisterSeller(register, metadata=admin, timeout=10)
    create = a_product_request(seller)
    product = (await catalog.stub.CreateProduct(create, metadata=admin, timeout=10)).product
    sku = product.skus[0].sku_id
    return {
        "RegisterSeller": [register],
        "GetSeller": [pb.GetSellerRequest(seller_id=seller)],
        "GetSellerQuality": [pb.GetSellerQualityRequest(seller_id=seller)],
        "CreateProduct": [create],
        "UpdateProduct": [
            pb.UpdateProductRequest(
                product_id=product.product_id,
                title="Silk scarf deluxe",
                prices=[pb.SkuPriceUpdate(sku_id=sku, price=gbp(2_500))],
                expected_version=product.version,
            )
        ],
        "GetProduct": [pb.GetProductRequest(product_id=product.product_id)],
        "BatchGetProducts": [pb.BatchGetProductsRequest(product_ids=[product.product_id])],
        "SearchProducts": [
            pb.SearchProductsRequest(text="silk", category_id="fashion", currency="GBP")
        ],
        "AdjustStock": [pb.AdjustStockRequest(sku_id=sku, warehouse_id="w1", delta=5)],
        "ReviewListing": [
            pb.ReviewListingRequest(
                product_id=product.product_id, decision=pb.REVIEW_DECISION_APPROVE
            )
        ],
    }


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_no_request_makes_catalog_fail(catalog: RunningCatalog) -> None:
    report = await fuzz_service(
        catalog.channel,
        "shopstream.catalog.v1.CatalogService",
        catalog.tokens.mint,
        sorted(ROLES),
        per_method=300,
        seeds=await _seeds(catalog),
    )
    print(report.summary())
    assert not report.failures, report.summary()
    assert all(report.calls(m) == 300 for m, _ in report.codes)
    assert await health_status(catalog.channel) == "SERVING"
