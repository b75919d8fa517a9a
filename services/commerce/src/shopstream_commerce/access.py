"""Who may see an order: its buyer, its seller, admins (acting for someone: platform ensure_acts_for)."""

from __future__ import annotations

from shopstream_commerce.domain.records import OrderRecord
from shopstream_platform.errors import PermissionDeniedError
from shopstream_platform.grpc.auth import Principal


def ensure_can_see(principal: Principal, order: OrderRecord) -> None:
    if principal.is_admin:
        return
    if principal.role == "buyer" and principal.id == order.buyer_id:
        return
    if principal.role == "seller" and principal.id == order.seller_id:
        return
    raise PermissionDeniedError(
        f"{principal.role} {principal.id!r} may not see order {order.order_id}"
    )
