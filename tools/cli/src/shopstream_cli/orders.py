"""`shopstream orders get`: one order with its lines and attribution (CommerceService)."""

from __future__ import annotations

from shopstream.commerce.v1 import commerce_service_pb2 as pb
from shopstream.commerce.v1.commerce_service_pb2_grpc import CommerceServiceStub
from shopstream.commerce.v1.order_pb2 import AttributionContext, Order, OrderState
from shopstream_cli.output import (
    emit_fields,
    emit_message,
    emit_table,
    enum_label,
    money,
    timestamp,
)
from shopstream_cli.rpc import Target, connect
from shopstream_platform.settings import AuthSettings

LINE_COLUMNS = [
    "line",
    "sku",
    "product",
    "category",
    "qty",
    "unit price",
    "line total",
    "refunded",
    "attribution",
]


def attribution(context: AttributionContext) -> str:
    parts = [
        f"creator {context.creator_id}" if context.creator_id else "",
        f"live {context.live_session_id}" if context.live_session_id else "",
        f"video {context.video_id}" if context.video_id else "",
        f"ad click {context.ad_click_id}" if context.ad_click_id else "",
    ]
    return ", ".join(p for p in parts if p)


def order_fields(response: pb.GetOrderResponse) -> list[tuple[str, object]]:
    order = response.order
    sellers = sorted({line.seller_id for line in order.lines})
    fields: list[tuple[str, object]] = [
        ("order", order.order_id),
        ("state", enum_label(OrderState.Name(order.state), "ORDER_STATE_")),
        ("buyer", order.buyer_id),
        ("seller", ", ".join(sellers) or "-"),
        ("total", money(order.total) or "-"),
        ("placed", timestamp(order.placed_at) or "-"),
        ("updated", timestamp(order.updated_at) or "-"),
        ("tracking consent", "yes" if order.tracking_consent else "no"),
        ("version", order.version),
    ]
    if response.rejection_reason:
        sku = f" (SKU {response.rejected_sku_id})" if response.rejected_sku_id else ""
        fields.append(("rejected", f"{response.rejection_reason}{sku}"))
    return fields


def line_rows(order: Order) -> list[tuple[object, ...]]:
    return [
        (
            line.line_id,
            line.sku_id,
            line.product_id,
            line.category_id,
            line.quantity,
            money(line.unit_price),
            money(line.line_total),
            line.refunded_quantity or "",
            attribution(line.attribution),
        )
        for line in order.lines
    ]


def get(target: Target, auth: AuthSettings, order_id: str, *, as_json: bool) -> int:
    with connect(target, auth) as conn:
        response = CommerceServiceStub(conn.channel).GetOrder(
            pb.GetOrderRequest(order_id=order_id), timeout=conn.timeout, metadata=conn.metadata
        )
    if as_json:
        emit_message(response)
        return 0
    emit_fields(f"Order {response.order.order_id}", order_fields(response))
    emit_table("Lines", LINE_COLUMNS, line_rows(response.order), as_json=False)
    return 0
