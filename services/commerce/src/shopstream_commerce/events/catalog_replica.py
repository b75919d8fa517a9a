"""catalog.products.v1 → commerce's local copy of SKUs (owner, price, currency, listing status).

PlaceOrder prices lines from this table: no network call per order, and never the caller's
price. Older product versions than the one stored are ignored, so reordering cannot roll back.
"""

from __future__ import annotations

from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncSession

from shopstream.catalog.v1 import catalog_pb2, events_pb2
from shopstream_commerce.domain.records import SkuInfo
from shopstream_commerce.store import repository as repo
from shopstream_platform.kafka.events import Event, InvalidEventError

PRODUCTS_TOPIC = "catalog.products.v1"


async def on_product(event: Event[Message], session: AsyncSession) -> None:
    product: catalog_pb2.Product = event.message.product  # type: ignore[attr-defined]
    if not product.product_id or not product.seller_id:
        raise InvalidEventError("product_id and seller_id are required")
    for sku in product.skus:
        await repo.upsert_sku(
            session,
            SkuInfo(
                sku_id=sku.sku_id,
                product_id=product.product_id,
                seller_id=product.seller_id,
                price_minor=sku.price.amount_minor,
                currency=sku.price.currency,
                listing_status=int(product.status),
                category_id=product.category_id,
            ),
            product.version,
        )


async def on_status(event: Event[Message], session: AsyncSession) -> None:
    change = event.message
    assert isinstance(change, events_pb2.ListingStatusChanged)
    await repo.set_listing_status(session, change.product_id, int(change.status))


ROUTES = {
    events_pb2.ProductCreated: on_product,
    events_pb2.ProductUpdated: on_product,
    events_pb2.ListingStatusChanged: on_status,
}
