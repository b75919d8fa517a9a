"""`shopstream products search`: listings by text and filters (CatalogService)."""

from __future__ import annotations

from collections.abc import Sequence

from shopstream.catalog.v1 import catalog_service_pb2 as pb
from shopstream.catalog.v1.catalog_pb2 import ListingStatus, Product
from shopstream.catalog.v1.catalog_service_pb2_grpc import CatalogServiceStub
from shopstream.common.v1.paging_pb2 import PageRequest
from shopstream_cli.output import emit_message, emit_table, enum_label, money, note
from shopstream_cli.rpc import Target, connect
from shopstream_platform.settings import AuthSettings

COLUMNS = [
    "product",
    "title",
    "seller",
    "category",
    "brand",
    "status",
    "price",
    "available",
    "skus",
]


def price(product: Product) -> str:
    """The cheapest SKU's price ("from …" when the SKUs differ), as search filters by it."""
    priced = [s.price for s in product.skus if s.price.currency]
    if not priced:
        return ""
    cheapest = min(priced, key=lambda m: m.amount_minor)
    varies = any(m.amount_minor != cheapest.amount_minor for m in priced)
    return f"from {money(cheapest)}" if varies else money(cheapest)


def product_rows(products: Sequence[Product]) -> list[tuple[object, ...]]:
    return [
        (
            p.product_id,
            p.title,
            p.seller_id,
            p.category_id,
            p.brand,
            enum_label(ListingStatus.Name(p.status), "LISTING_STATUS_"),
            price(p),
            sum(s.available for s in p.skus),
            len(p.skus),
        )
        for p in products
    ]


def search(
    target: Target,
    auth: AuthSettings,
    request: pb.SearchProductsRequest,
    *,
    as_json: bool,
) -> int:
    with connect(target, auth) as conn:
        response = CatalogServiceStub(conn.channel).SearchProducts(
            request, timeout=conn.timeout, metadata=conn.metadata
        )
    if as_json:
        emit_message(response)
        return 0
    total = response.page.total_size
    counted = f" of {total}" if total >= 0 else ""
    emit_table(
        f"Products matching {request.text!r} ({len(response.products)}{counted})",
        COLUMNS,
        product_rows(response.products),
        as_json=False,
    )
    if response.page.next_page_token:
        note(f"more: --page-token {response.page.next_page_token}")
    return 0


def search_request(
    text: str,
    *,
    category: str = "",
    seller: str = "",
    in_stock: bool = False,
    limit: int = 20,
    page_token: str = "",
) -> pb.SearchProductsRequest:
    return pb.SearchProductsRequest(
        text=text,
        category_id=category,
        seller_id=seller,
        in_stock_only=in_stock,
        page=PageRequest(page_size=limit, page_token=page_token),
    )
