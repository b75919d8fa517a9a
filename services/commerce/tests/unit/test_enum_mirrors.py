"""Commerce's hand-mirrored enums equal their proto enums (names and numbers)."""

from __future__ import annotations

from shopstream.commerce.v1 import (
    commerce_service_pb2,
    commissions_pb2,
    order_pb2,
    payment_events_pb2,
)
from shopstream_commerce.domain.after_sales import AfterSaleType, RequestState
from shopstream_commerce.domain.orders import OrderState
from shopstream_commerce.domain.packages import Disposition, PackageState
from shopstream_commerce.domain.settlements import EntryKind
from shopstream_commerce.payments.provider import PaymentStatus
from shopstream_platform.enums import mirror_mismatches

MIRRORS = [
    (OrderState, order_pb2.OrderState),
    (PackageState, order_pb2.PackageState),
    (Disposition, order_pb2.ReturnDisposition),
    (PaymentStatus, payment_events_pb2.PaymentStatus),
    (EntryKind, commissions_pb2.SellerEntryKind),
    (AfterSaleType, commerce_service_pb2.AfterSaleType),
    (RequestState, commerce_service_pb2.RefundState),
]


def test_every_mirror_matches_its_proto() -> None:
    assert [problem for m, proto in MIRRORS for problem in mirror_mismatches(m, proto)] == []
