"""gRPC and Kafka steps the catalog integration tests share."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import grpc

from shopstream.catalog.v1 import catalog_pb2, catalog_service_pb2_grpc
from shopstream.catalog.v1 import catalog_service_pb2 as pb
from shopstream.commerce.v1 import order_events_pb2, order_pb2
from shopstream.common.v1 import money_pb2
from shopstream_catalog.usecases.catalog import CatalogApp
from shopstream_platform.grpc.auth import TokenCodec
from shopstream_platform.kafka.producer import EventProducer
from shopstream_platform.runtime import Runtime


@dataclass
class RunningCatalog:
    runtime: Runtime
    app: CatalogApp
    channel: grpc.aio.Channel
    stub: catalog_service_pb2_grpc.CatalogServiceStub
    tokens: TokenCodec
    # Outputs are read from here on, not from the topics' start: the shared broker's topics hold
    # millions of older records (and a clean one grows through the run).
    since_ms: int = field(default_factory=lambda: int(time.time() * 1000) - 5_000)

    def auth(self, role: str, principal_id: str) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {self.tokens.mint(role, principal_id)}")]

    def metric(self, name: str, labels: dict[str, str]) -> float:
        return self.runtime.metrics.registry.get_sample_value(name, labels) or 0.0


def gbp(minor: int) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=minor, currency="GBP")


async def register(catalog: RunningCatalog, seller_id: str) -> None:
    await catalog.stub.RegisterSeller(
        pb.RegisterSellerRequest(
            seller_id=seller_id, display_name=f"Shop {seller_id}", country="GB"
        ),
        metadata=catalog.auth("seller", seller_id),
        timeout=10,
    )


def a_product_request(
    seller_id: str,
    *,
    title: str = "Silk scarf",
    price: int = 2_000,
    stock: int = 10,
    colours: tuple[str, ...] = ("red",),
    category: str = "fashion",
    attributes: dict[str, str] | None = None,
) -> pb.CreateProductRequest:
    """A valid listing of `seller_id`: one SKU a colour, its stock in warehouse w1. The one
    product request of the catalog tests and the security suite (libs/platform/tests/security)."""
    return pb.CreateProductRequest(
        seller_id=seller_id,
        title=title,
        description="Hand-rolled edges, 90 x 90 cm",
        category_id=category,
        brand="Acme",
        attributes=attributes if attributes is not None else {"material": "silk"},
        skus=[
            pb.NewSku(
                sku_code=colour,
                variant_attributes={"colour": colour},
                price=gbp(price),
                stock={"w1": stock},
            )
            for colour in colours
        ],
    )


async def create_product(
    catalog: RunningCatalog,
    seller_id: str,
    *,
    title: str = "Silk scarf",
    price: int = 2_000,
    stock: int = 10,
    colours: tuple[str, ...] = ("red",),
    category: str = "fashion",
    attributes: dict[str, str] | None = None,
    approve: bool = True,
) -> catalog_pb2.Product:
    response = await catalog.stub.CreateProduct(
        a_product_request(
            seller_id,
            title=title,
            price=price,
            stock=stock,
            colours=colours,
            category=category,
            attributes=attributes,
        ),
        metadata=catalog.auth("seller", seller_id),
        timeout=10,
    )
    product = response.product
    if approve and product.status == catalog_pb2.LISTING_STATUS_PENDING_REVIEW:
        product = (
            await catalog.stub.ReviewListing(
                pb.ReviewListingRequest(
                    product_id=product.product_id, decision=pb.REVIEW_DECISION_APPROVE
                ),
                metadata=catalog.auth("admin", "admin-1"),
                timeout=10,
            )
        ).product
    return product


def order(
    order_id: str, lines: list[tuple[str, str, str, int]], buyer: str = "b1"
) -> order_pb2.Order:
    """lines: (sku_id, product_id, seller_id, quantity)."""
    placed = order_pb2.Order(
        order_id=order_id, buyer_id=buyer, state=order_pb2.ORDER_STATE_PLACED, version=1
    )
    placed.placed_at.GetCurrentTime()
    for i, (sku, product, seller, quantity) in enumerate(lines):
        placed.lines.add(
            line_id=f"{order_id}-l{i}",
            sku_id=sku,
            product_id=product,
            seller_id=seller,
            quantity=quantity,
            unit_price=gbp(1000),
        )
    return placed


async def publish_placed(producer: EventProducer, o: order_pb2.Order) -> None:
    await producer.publish_and_wait(
        "commerce.orders.v1", o.order_id, order_events_pb2.OrderPlaced(order=o)
    )
