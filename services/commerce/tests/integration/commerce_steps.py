"""The running shop (catalog + commerce) and the gRPC steps the commerce tests share."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from shopstream.catalog.v1 import catalog_pb2, catalog_service_pb2_grpc
from shopstream.catalog.v1 import catalog_service_pb2 as cpb
from shopstream.commerce.v1 import commerce_service_pb2 as pb
from shopstream.commerce.v1 import commerce_service_pb2_grpc, order_pb2
from shopstream.common.v1 import money_pb2
from shopstream_catalog.api.policy import POLICY as CATALOG_POLICY
from shopstream_catalog.settings import CatalogSettings
from shopstream_catalog.store.tables import MIGRATIONS as CATALOG_MIGRATIONS
from shopstream_catalog.wiring import wire as wire_catalog
from shopstream_commerce.api.policy import POLICY
from shopstream_commerce.settings import CommerceSettings
from shopstream_commerce.store.tables import MIGRATIONS
from shopstream_commerce.wiring import wire
from shopstream_platform.grpc.auth import TokenCodec
from shopstream_platform.settings import KafkaSettings
from shopstream_platform.testing import (
    HostedService,
    fast_test_settings,
    hosted_service,
    start_groups_at_end,
)


@dataclass
class Shop:
    catalog: HostedService
    commerce: HostedService
    catalog_stub: catalog_service_pb2_grpc.CatalogServiceStub
    stub: commerce_service_pb2_grpc.CommerceServiceStub
    tokens: TokenCodec
    # Outputs are read from here on, not from the topics' start: the shared broker's topics hold
    # millions of older records (and a clean one grows through the run).
    since_ms: int = field(default_factory=lambda: int(time.time() * 1000) - 5_000)

    def auth(self, role: str, principal_id: str) -> tuple[tuple[str, str]]:
        return (("authorization", f"Bearer {self.tokens.mint(role, principal_id)}"),)

    async def listed_product(
        self, seller: str, *, stock: int = 10, price: int = 2_000
    ) -> catalog_pb2.Product:
        """A registered seller's approved product with one SKU, known to commerce."""
        return await self.listed_skus(seller, [{"w1": stock}], price=price, codes=["one"])

    async def listed_skus(
        self,
        seller: str,
        stocks: list[dict[str, int]],
        *,
        price: int = 1_000,
        codes: list[str] | None = None,
    ) -> catalog_pb2.Product:
        """An approved product with one SKU per entry of `stocks` (warehouse → on-hand), coded
        `codes` (default v0, v1, ...)."""
        try:
            await self.catalog_stub.RegisterSeller(
                cpb.RegisterSellerRequest(seller_id=seller, display_name=seller, country="GB"),
                metadata=self.auth("seller", seller),
                timeout=10,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise
        created = await self.catalog_stub.CreateProduct(
            cpb.CreateProductRequest(
                seller_id=seller,
                title="Silk scarf",
                category_id="fashion",
                brand="Acme",
                attributes={"material": "silk"},
                skus=[
                    cpb.NewSku(
                        sku_code=codes[i] if codes else f"v{i}",
                        price=money_pb2.Money(amount_minor=price, currency="GBP"),
                        stock=stock,
                    )
                    for i, stock in enumerate(stocks)
                ],
            ),
            metadata=self.auth("seller", seller),
            timeout=10,
        )
        reviewed = await self.catalog_stub.ReviewListing(
            cpb.ReviewListingRequest(
                product_id=created.product.product_id, decision=cpb.REVIEW_DECISION_APPROVE
            ),
            metadata=self.auth("admin", "admin"),
            timeout=10,
        )
        return reviewed.product

    async def place_lines(
        self, buyer: str, lines: list[tuple[str, int]], *, region: str = "", key: str = ""
    ) -> order_pb2.Order:
        """PlaceOrder with several (SKU, quantity) lines, retrying while commerce has not yet
        heard of a just-created SKU."""
        request = pb.PlaceOrderRequest(
            buyer_id=buyer,
            idempotency_key=key or f"{buyer}-{lines}-{region}",
            ship_to_region=region,
            lines=[pb.OrderLineRequest(sku_id=sku, quantity=q) for sku, q in lines],
        )
        for _ in range(100):
            try:
                response = await self.stub.PlaceOrder(
                    request, metadata=self.auth("buyer", buyer), timeout=10
                )
                return response.order
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.INVALID_ARGUMENT or "unknown SKU" not in (
                    exc.details() or ""
                ):
                    raise
                await asyncio.sleep(0.1)
        raise AssertionError(f"commerce never learned of SKUs {lines}")

    async def place(
        self, buyer: str, sku_id: str, quantity: int = 1, key: str = "", **attribution: str
    ) -> order_pb2.Order:
        """PlaceOrder, retrying while commerce has not yet heard of a just-created SKU."""
        request = pb.PlaceOrderRequest(
            buyer_id=buyer,
            idempotency_key=key or f"{buyer}-{sku_id}-{quantity}-{sorted(attribution.items())}",
            lines=[
                pb.OrderLineRequest(
                    sku_id=sku_id,
                    quantity=quantity,
                    attribution=order_pb2.AttributionContext(**attribution),
                )
            ],
        )
        for _ in range(100):
            try:
                response = await self.stub.PlaceOrder(
                    request, metadata=self.auth("buyer", buyer), timeout=10
                )
                return response.order
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.INVALID_ARGUMENT or "unknown SKU" not in (
                    exc.details() or ""
                ):
                    raise
                await asyncio.sleep(0.1)
        raise AssertionError(f"commerce never learned of SKU {sku_id}")

    async def wait_state(
        self, order: order_pb2.Order, *states: int, timeout_s: float = 30
    ) -> pb.GetOrderResponse:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            got = await self.stub.GetOrder(
                pb.GetOrderRequest(order_id=order.order_id),
                metadata=self.auth("buyer", order.buyer_id),
                timeout=10,
            )
            if got.order.state in states:
                return got
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"order {order.order_id} stuck in {order_pb2.OrderState.Name(got.order.state)}"
                    f" {got.rejection_reason}"
                )
            await asyncio.sleep(0.05)

    async def available(self, product_id: str) -> int:
        product = (
            await self.catalog_stub.GetProduct(
                cpb.GetProductRequest(product_id=product_id), timeout=10
            )
        ).product
        return sum(s.available for s in product.skus)


def call_kwargs(shop: Shop, role: str, principal: str) -> dict[str, Any]:
    return {"metadata": shop.auth(role, principal), "timeout": 10}


def own_catalog_name(kafka: KafkaSettings) -> str:
    """A catalog service name (so consumer group) of this test's own, its group starting at the
    orders topic's end: on a shared broker other catalogs (other test runs, a local stack) would
    otherwise share `catalog.orders` and take, and answer, our orders."""
    name = f"catalog-{uuid.uuid4().hex[:8]}"
    start_groups_at_end(
        kafka,
        {
            f"{name}.orders": ["commerce.orders.v1"],
            f"{name}.fulfilment": ["commerce.fulfilment.v1"],
        },
    )
    return name


def own_commerce_name(kafka: KafkaSettings) -> str:
    """A commerce service name of this test's own, every consumer group starting at its topics'
    end: a local stack's commerce on the same broker shares the default groups and would take
    partitions (a product's or a reservation's) the test's commerce is waiting for."""
    name = f"commerce-{uuid.uuid4().hex[:8]}"
    groups = {
        "stock": ["catalog.stock.v1"],
        "catalog": ["catalog.products.v1"],
        "risk": ["creators.scores.v1", "ads.invalid-traffic.v1"],
        "social": ["social.live-stats.v1"],
        "fulfilment": ["catalog.fulfilment.v1"],
    }
    start_groups_at_end(kafka, {f"{name}.{suffix}": topics for suffix, topics in groups.items()})
    return name


@contextlib.asynccontextmanager
async def running_shop(
    kafka: KafkaSettings,
    tmp_path: Path,
    *,
    commerce_db_url: str | None = None,
    commerce_overrides: dict[str, Any] | None = None,
    catalog_overrides: dict[str, Any] | None = None,
) -> AsyncIterator[Shop]:
    """Catalog and commerce in this event loop (SQLite for catalog; commerce on
    `commerce_db_url`, or SQLite), each under a service name of this test's own, so their
    consumer groups start at the topics' end and another stack on the shared broker neither
    shares them nor answers our orders."""
    fast = fast_test_settings(kafka)
    catalog_name = own_catalog_name(kafka)
    catalog_settings = CatalogSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/catalog.db",
        **{"service_name": catalog_name, **fast, **(catalog_overrides or {})},
    )
    commerce_settings = CommerceSettings(
        database_url=commerce_db_url or f"sqlite+aiosqlite:///{tmp_path}/commerce.db",
        **{
            **fast,
            "service_name": own_commerce_name(kafka),
            "sweep_interval_s": 0.2,
            # Other catalogs on the shared broker answer our orders too (UNKNOWN_SKU).
            "catalog_source": f"shopstream/{catalog_name}",
            **(commerce_overrides or {}),
        },
    )
    async with (
        hosted_service(
            catalog_settings, wire_catalog, policy=CATALOG_POLICY, migrations=CATALOG_MIGRATIONS
        ) as catalog,
        hosted_service(commerce_settings, wire, policy=POLICY, migrations=MIGRATIONS) as commerce,
        grpc.aio.insecure_channel(f"127.0.0.1:{catalog.port}") as catalog_channel,
        grpc.aio.insecure_channel(f"127.0.0.1:{commerce.port}") as commerce_channel,
    ):
        try:
            yield Shop(
                catalog,
                commerce,
                catalog_service_pb2_grpc.CatalogServiceStub(catalog_channel),
                commerce_service_pb2_grpc.CommerceServiceStub(commerce_channel),
                TokenCodec(commerce_settings.auth),
            )
        finally:
            # Both shut down at once (each takes 1-3 s, mostly its consumers leaving their
            # groups); each context then waits for its own service's clean exit.
            commerce.runtime.stop()
            catalog.runtime.stop()
