"""CatalogService over gRPC: requests to use cases and results to responses, nothing more."""

from __future__ import annotations

from typing import Any

from shopstream.catalog.v1 import catalog_service_pb2 as pb
from shopstream.catalog.v1 import catalog_service_pb2_grpc
from shopstream.common.v1 import paging_pb2
from shopstream_catalog import convert
from shopstream_catalog.domain.fulfilment import Warehouse
from shopstream_catalog.store.repository import SearchQuery
from shopstream_catalog.usecases.catalog import CatalogApp, ProductChanges
from shopstream_catalog.usecases.fulfilment import Fulfilment
from shopstream_platform.errors import InvalidArgumentError
from shopstream_platform.grpc.auth import current_principal
from shopstream_platform.paging import page_size

MAX_BATCH = 100

Context = Any


class CatalogServicer(catalog_service_pb2_grpc.CatalogServiceServicer):
    def __init__(self, app: CatalogApp, fulfilment: Fulfilment) -> None:
        self._app = app
        self._fulfilment = fulfilment

    async def RegisterSeller(
        self, request: pb.RegisterSellerRequest, context: Context
    ) -> pb.RegisterSellerResponse:
        seller = await self._app.register_seller(
            current_principal(), request.seller_id, request.display_name, request.country
        )
        return pb.RegisterSellerResponse(seller=convert.seller_pb(seller))

    async def GetSeller(
        self, request: pb.GetSellerRequest, context: Context
    ) -> pb.GetSellerResponse:
        return pb.GetSellerResponse(
            seller=convert.seller_pb(await self._app.get_seller(request.seller_id))
        )

    async def ListCategories(
        self, request: pb.ListCategoriesRequest, context: Context
    ) -> pb.ListCategoriesResponse:
        return pb.ListCategoriesResponse(categories=convert.categories_pb())

    async def CreateProduct(
        self, request: pb.CreateProductRequest, context: Context
    ) -> pb.CreateProductResponse:
        view = await self._app.create_product(current_principal(), convert.new_product(request))
        return pb.CreateProductResponse(product=convert.product_pb(view))

    async def UpdateProduct(
        self, request: pb.UpdateProductRequest, context: Context
    ) -> pb.UpdateProductResponse:
        changes = ProductChanges(
            title=request.title or None,
            description=request.description or None,
            brand=request.brand or None,
            attributes=dict(request.attributes) or None,
            prices={p.sku_id: convert.money(p.price) for p in request.prices} or None,
            expected_version=request.expected_version,
        )
        view = await self._app.update_product(current_principal(), request.product_id, changes)
        return pb.UpdateProductResponse(product=convert.product_pb(view))

    async def GetProduct(
        self, request: pb.GetProductRequest, context: Context
    ) -> pb.GetProductResponse:
        return pb.GetProductResponse(
            product=convert.product_pb(await self._app.get_product(request.product_id))
        )

    async def BatchGetProducts(
        self, request: pb.BatchGetProductsRequest, context: Context
    ) -> pb.BatchGetProductsResponse:
        ids = list(request.product_ids)
        if len(ids) > MAX_BATCH:
            raise InvalidArgumentError("product_ids", f"at most {MAX_BATCH} ids per call")
        found = await self._app.batch_get(ids)
        return pb.BatchGetProductsResponse(
            products=[convert.product_pb(found[i]) for i in ids if i in found],
            missing_ids=[i for i in ids if i not in found],
        )

    async def SearchProducts(
        self, request: pb.SearchProductsRequest, context: Context
    ) -> pb.SearchProductsResponse:
        settings = self._app.settings
        size = page_size(
            request.page.page_size,
            settings.search_default_page_size,
            settings.search_max_page_size,
        )
        query = SearchQuery(
            text=request.text,
            category_id=request.category_id,
            seller_id=request.seller_id,
            min_price_minor=request.min_price_minor,
            max_price_minor=request.max_price_minor,
            currency=request.currency.upper(),
            in_stock_only=request.in_stock_only,
            page_size=size,
            page_token=request.page.page_token,
        )
        views, token = await self._app.search(query)
        return pb.SearchProductsResponse(
            products=[convert.product_pb(v) for v in views],
            page=paging_pb2.PageInfo(next_page_token=token, total_size=-1),
        )

    async def AdjustStock(
        self, request: pb.AdjustStockRequest, context: Context
    ) -> pb.AdjustStockResponse:
        level = await self._app.adjust_stock(
            current_principal(), request.sku_id, request.warehouse_id, request.delta, request.reason
        )
        return pb.AdjustStockResponse(stock=convert.stock_pb(level), available=level.available)

    async def ReviewListing(
        self, request: pb.ReviewListingRequest, context: Context
    ) -> pb.ReviewListingResponse:
        if request.decision == pb.REVIEW_DECISION_UNSPECIFIED:
            raise InvalidArgumentError("decision", "must be APPROVE or REJECT")
        view = await self._app.review_listing(
            current_principal(),
            request.product_id,
            request.decision == pb.REVIEW_DECISION_APPROVE,
            request.reason,
        )
        return pb.ReviewListingResponse(product=convert.product_pb(view))

    async def GetSellerQuality(
        self, request: pb.GetSellerQualityRequest, context: Context
    ) -> pb.GetSellerQualityResponse:
        tier, stats, suppressed, reasons = await self._app.seller_quality(
            current_principal(), request.seller_id
        )
        window = self._app.settings.quality.window_days
        return pb.GetSellerQualityResponse(
            quality=convert.quality_pb(request.seller_id, tier, stats, window, suppressed, reasons)
        )

    async def RegisterWarehouse(
        self, request: pb.RegisterWarehouseRequest, context: Context
    ) -> pb.RegisterWarehouseResponse:
        warehouse = await self._fulfilment.register_warehouse(
            current_principal(),
            Warehouse(
                warehouse_id=request.warehouse_id,
                display_name=request.display_name,
                region=request.region,
                platform=request.platform,
                seller_id=request.seller_id,
            ),
        )
        return pb.RegisterWarehouseResponse(warehouse=convert.warehouse_pb(warehouse))

    async def ListWarehouses(
        self, request: pb.ListWarehousesRequest, context: Context
    ) -> pb.ListWarehousesResponse:
        found, token = await self._fulfilment.list_warehouses(
            request.platform_only, request.page.page_size, request.page.page_token
        )
        return pb.ListWarehousesResponse(
            warehouses=[convert.warehouse_pb(w) for w in found],
            page=paging_pb2.PageInfo(next_page_token=token, total_size=-1),
        )

    async def EnrolSku(self, request: pb.EnrolSkuRequest, context: Context) -> pb.EnrolSkuResponse:
        await self._fulfilment.enrol_sku(current_principal(), request.sku_id, request.warehouse_id)
        return pb.EnrolSkuResponse()

    async def AnnounceInbound(
        self, request: pb.AnnounceInboundRequest, context: Context
    ) -> pb.AnnounceInboundResponse:
        shipment = await self._fulfilment.announce_inbound(
            current_principal(),
            request.seller_id,
            request.warehouse_id,
            [(line.sku_id, line.quantity) for line in request.lines],
            request.idempotency_key,
        )
        return pb.AnnounceInboundResponse(shipment=convert.inbound_pb(shipment))

    async def ReceiveInbound(
        self, request: pb.ReceiveInboundRequest, context: Context
    ) -> pb.ReceiveInboundResponse:
        shipment = await self._fulfilment.receive_inbound(
            current_principal(),
            request.inbound_id,
            [(line.sku_id, line.quantity) for line in request.received],
        )
        return pb.ReceiveInboundResponse(shipment=convert.inbound_pb(shipment))

    async def GetInbound(
        self, request: pb.GetInboundRequest, context: Context
    ) -> pb.GetInboundResponse:
        shipment = await self._fulfilment.get_inbound(current_principal(), request.inbound_id)
        return pb.GetInboundResponse(shipment=convert.inbound_pb(shipment))

    async def ListInbound(
        self, request: pb.ListInboundRequest, context: Context
    ) -> pb.ListInboundResponse:
        found, token = await self._fulfilment.list_inbound(
            current_principal(), request.seller_id, request.page.page_size, request.page.page_token
        )
        return pb.ListInboundResponse(
            shipments=[convert.inbound_pb(s) for s in found],
            page=paging_pb2.PageInfo(next_page_token=token, total_size=-1),
        )
