"""Stock per SKU and warehouse, recounted from catalog's topics and compared with GetProduct.

reserved = units reserved - released - committed for orders (catalog.stock.v1);
on_hand  = the stock a SKU was created with + every adjustment - committed units, where an
adjustment's delta is read from consecutive StockChanged records of the product (they carry the
level after the change, in order on the product's partition). A product is compared when it was
created inside the window and its seller is in scope.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from google.protobuf.message import Message

from shopstream.catalog.v1 import catalog_service_pb2 as cpb
from shopstream.catalog.v1 import events_pb2 as ev
from shopstream_cli.reconcile.report import Report
from shopstream_cli.reconcile.scope import Scope
from shopstream_cli.reconcile.services import Services, ServiceUnavailable
from shopstream_cli.reconcile.source import Topics

PRODUCTS_TOPIC = "catalog.products.v1"
STOCK_TOPIC = "catalog.stock.v1"
TOPICS: dict[str, dict[str, type[Message]]] = {
    PRODUCTS_TOPIC: {
        cls.DESCRIPTOR.full_name: cls
        for cls in (ev.ProductCreated, ev.ProductUpdated, ev.StockChanged)
    },
    STOCK_TOPIC: {
        cls.DESCRIPTOR.full_name: cls
        for cls in (ev.StockReserved, ev.StockReleased, ev.StockCommitted)
    },
}
ORDER_CAUSES = frozenset({"reserved", "released", "committed"})


@dataclass
class Level:
    on_hand: int = 0
    reserved: int = 0


@dataclass
class ProductStock:
    seller_id: str
    levels: dict[tuple[str, str], Level] = field(default_factory=lambda: defaultdict(Level))


def recount(topics: Topics, scope: Scope) -> dict[str, ProductStock]:
    products: dict[str, ProductStock] = {}
    sku_product: dict[str, str] = {}
    # The level the products topic last said, per (sku, warehouse): adjustments are its deltas.
    last_said: dict[tuple[str, str], int] = {}
    for record in topics.of(PRODUCTS_TOPIC):
        message = record.message
        if isinstance(message, ev.ProductCreated | ev.ProductUpdated):
            product = message.product
            stock = products.get(product.product_id)
            if stock is None:
                if isinstance(message, ev.ProductUpdated):
                    continue  # created before the window
                stock = products[product.product_id] = ProductStock(product.seller_id)
            for sku in product.skus:
                sku_product[sku.sku_id] = product.product_id
                for level in sku.stock:
                    key = (sku.sku_id, level.warehouse_id)
                    if key not in last_said:
                        last_said[key] = level.on_hand
                        stock.levels[key].on_hand += level.on_hand
        elif isinstance(message, ev.StockChanged):
            stock = products.get(message.product_id)
            if stock is None:
                continue
            key = (message.sku_id, message.warehouse_id)
            before = last_said.get(key, 0)
            last_said[key] = message.on_hand
            if message.cause not in ORDER_CAUSES:
                stock.levels[key].on_hand += message.on_hand - before
    for record in topics.of(STOCK_TOPIC):
        message = record.message
        sign = {ev.StockReserved: 1, ev.StockReleased: -1, ev.StockCommitted: -1}[type(message)]
        for line in message.lines:  # type: ignore[attr-defined]
            stock = products.get(sku_product.get(line.sku_id, ""))
            if stock is None:
                continue
            counted = stock.levels[(line.sku_id, line.warehouse_id)]
            counted.reserved += sign * line.quantity
            if isinstance(message, ev.StockCommitted):
                counted.on_hand -= line.quantity
    return {p: s for p, s in sorted(products.items()) if scope.seller(s.seller_id)}


def compare(products: dict[str, ProductStock], services: Services, report: Report) -> None:
    on_hand = report.check("stock.on_hand", "per SKU and warehouse: on hand vs GetProduct")
    reserved = report.check("stock.reserved", "per SKU and warehouse: reserved vs GetProduct")
    ids = list(products)
    try:
        answers = services.calls(
            services.catalog.GetProduct,
            [cpb.GetProductRequest(product_id=p) for p in ids],
            service="catalog",
        )
    except ServiceUnavailable as exc:
        on_hand.skip_for(exc)
        reserved.skip_for(exc)
        return
    for product_id, answer in zip(ids, answers, strict=True):
        recounted = products[product_id].levels
        if answer is None:
            on_hand.compare(product_id, len(recounted), None, "catalog does not know the product")
            continue
        got = {
            (sku.sku_id, level.warehouse_id): level
            for sku in answer.product.skus
            for level in sku.stock
        }
        for key in sorted(set(got) | set(recounted)):
            subject = f"{product_id}/{key[0]}@{key[1]}"
            mine = recounted.get(key)
            theirs = got.get(key)
            on_hand.compare(
                subject, mine.on_hand if mine else None, theirs.on_hand if theirs else None
            )
            reserved.compare(
                subject, mine.reserved if mine else None, theirs.reserved if theirs else None
            )
    report.totals["stock"] = {
        "products": len(products),
        "on_hand": sum(lv.on_hand for s in products.values() for lv in s.levels.values()),
        "reserved": sum(lv.reserved for s in products.values() for lv in s.levels.values()),
    }
