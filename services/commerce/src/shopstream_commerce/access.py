"""Who may see or act on what: buyers their orders, sellers theirs, creators their earnings."""

from __future__ import annotations

from shopstream_commerce.domain.records import OrderRecord
from shopstream_platform.errors import PermissionDeniedError
from shopstream_platform.grpc.auth import Principal


def ensure_is(principal: Principal, role: str, subject_id: str) -> None:
    """The caller is `role` `subject_id` itself, or an admin/service acting for them."""
    if principal.is_admin:
        return
    if principal.role != role or principal.id != subject_id:
        raise PermissionDeniedError(
            f"{principal.role} {principal.id!r} may not act for {role} {subject_id!r}"
        )


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
