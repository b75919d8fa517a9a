"""Records ↔ protobuf messages for the gRPC API and the published events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from shopstream.commerce.v1 import (
    commerce_service_pb2,
    commissions_pb2,
    live_pb2,
    order_pb2,
    payment_events_pb2,
)
from shopstream.common.v1 import money_pb2
from shopstream_commerce.domain.after_sales import AfterSaleType, RequestState
from shopstream_commerce.domain.flash_sales import FlashSale
from shopstream_commerce.domain.leaks import LeakReport
from shopstream_commerce.domain.money import gpm
from shopstream_commerce.domain.orders import OrderState
from shopstream_commerce.domain.packages import Disposition, PackageRecord
from shopstream_commerce.domain.records import LedgerRecord, LiveRecord, OrderRecord, RefundRecord
from shopstream_commerce.domain.settlements import Breakdown, EntryKind, SellerEntry
from shopstream_commerce.payments.provider import PaymentStatus
from shopstream_platform.errors import InvalidArgumentError


# The domain's enums mirror the protos' by number (tests/unit/test_enum_mirrors.py checks).
def order_state_pb(state: OrderState) -> order_pb2.OrderState.ValueType:
    return cast("order_pb2.OrderState.ValueType", int(state))


def refund_state_pb(state: RequestState) -> commerce_service_pb2.RefundState.ValueType:
    return cast("commerce_service_pb2.RefundState.ValueType", int(state))


def after_sale_type_pb(kind: AfterSaleType) -> commerce_service_pb2.AfterSaleType.ValueType:
    return cast("commerce_service_pb2.AfterSaleType.ValueType", int(kind))


def seller_entry_kind_pb(kind: EntryKind) -> commissions_pb2.SellerEntryKind.ValueType:
    return cast("commissions_pb2.SellerEntryKind.ValueType", int(kind))


def payment_status_pb(status: PaymentStatus) -> payment_events_pb2.PaymentStatus.ValueType:
    return cast("payment_events_pb2.PaymentStatus.ValueType", int(status))


def timestamp(t: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(t)
    return ts


def optional_time(message: Message, field: str) -> datetime | None:
    """A request's timestamp field as aware UTC, None when unset; INVALID_ARGUMENT when it is
    out of range."""
    if not message.HasField(field):
        return None
    value: Timestamp = getattr(message, field)
    try:
        return value.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise InvalidArgumentError(field, "is not a valid time") from None


def money(amount_minor: int, currency: str) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=amount_minor, currency=currency)


def order_pb(o: OrderRecord, *, ad_click_ids: bool = True) -> order_pb2.Order:
    """The order as events and its buyer see it; `ad_click_ids=False` is the seller's view (a
    line's ad click id identifies the buyer's ad interaction: sellers get no such id)."""
    message = order_pb2.Order(
        order_id=o.order_id,
        buyer_id=o.buyer_id,
        state=order_state_pb(o.state),
        total=money(o.total_minor, o.currency),
        placed_at=timestamp(o.placed_at),
        updated_at=timestamp(o.updated_at),
        tracking_consent=o.tracking_consent,
        version=o.version,
        ship_to_region=o.ship_to_region,
    )
    for line in o.lines:
        a = line.attribution
        message.lines.add(
            line_id=line.line_id,
            sku_id=line.sku_id,
            product_id=line.product_id,
            seller_id=line.seller_id,
            quantity=line.quantity,
            unit_price=money(line.unit_price_minor, line.currency),
            line_total=money(line.total_minor, line.currency),
            attribution=order_pb2.AttributionContext(
                creator_id=a.creator_id,
                live_session_id=a.live_session_id,
                video_id=a.video_id,
                ad_click_id=a.ad_click_id if ad_click_ids else "",
            ),
            refunded_quantity=line.refunded_quantity,
            category_id=line.category_id,
        )
    return message


def refund_pb(r: RefundRecord) -> commerce_service_pb2.Refund:
    return commerce_service_pb2.Refund(
        refund_id=r.refund_id,
        order_id=r.order_id,
        state=refund_state_pb(r.state),
        lines=[
            commerce_service_pb2.RefundLineRequest(line_id=k, quantity=v)
            for k, v in sorted(r.lines.items())
        ],
        amount=money(r.amount_minor, r.currency),
        reason=r.reason,
        type=after_sale_type_pb(r.kind),
        reject_reason=cast("commerce_service_pb2.RejectReason.ValueType", r.reject_reason),
        reject_note=r.reject_note,
        return_tracking_number=r.return_tracking,
        escalation_note=r.escalation_note,
        # The deadline matters only while the seller still has to answer.
        respond_by=timestamp(r.respond_by)
        if r.respond_by is not None and r.state == RequestState.REQUESTED
        else None,
        auto_approved=r.auto_approved,
    )


def after_sale_type(value: int) -> AfterSaleType:
    """A request's type (UNSPECIFIED is a refund); INVALID_ARGUMENT for an unknown number."""
    if value == commerce_service_pb2.AFTER_SALE_TYPE_UNSPECIFIED:
        return AfterSaleType.REFUND
    try:
        return AfterSaleType(value)
    except ValueError:
        raise InvalidArgumentError("type", f"unknown after-sale type {value}") from None


def live_stats_pb(s: LiveRecord) -> live_pb2.LiveStats:
    return live_pb2.LiveStats(
        current_viewers=s.current_viewers,
        peak_viewers=s.peak_viewers,
        total_views=s.total_views,
        orders=s.orders,
        gmv=money(s.gmv_minor, s.currency),
        gpm_minor=gpm(s.gmv_minor, s.total_views),
    )


def live_products_pb(s: LiveRecord) -> list[live_pb2.LiveProductStats]:
    return [
        live_pb2.LiveProductStats(
            product_id=p.product_id,
            orders=p.orders,
            units=p.units,
            gmv=money(p.gmv_minor, s.currency),
            gpm_minor=gpm(p.gmv_minor, s.total_views),
        )
        for p in s.products
    ]


def live_pb(s: LiveRecord) -> live_pb2.LiveSession:
    message = live_pb2.LiveSession(
        live_session_id=s.live_session_id,
        creator_id=s.creator_id,
        title=s.title,
        state=cast("live_pb2.LiveSessionState.ValueType", s.state),  # stored as its number
        pinned_product_ids=s.pinned,
        stats=live_stats_pb(s),
        started_at=timestamp(s.started_at),
        products=live_products_pb(s),
    )
    if s.ended_at is not None:
        message.ended_at.CopyFrom(timestamp(s.ended_at))
    if s.scheduled_for is not None:
        message.scheduled_for.CopyFrom(timestamp(s.scheduled_for))
    return message


def ledger_pb(e: LedgerRecord) -> commissions_pb2.LedgerEntry:
    return commissions_pb2.LedgerEntry(
        entry_id=e.entry_id,
        creator_id=e.creator_id,
        # Stored as the proto enums' numbers.
        kind=cast("commissions_pb2.LedgerEntryKind.ValueType", e.kind),
        account=cast("commissions_pb2.LedgerAccount.ValueType", e.account),
        amount=money(e.amount_minor, e.currency),
        order_id=e.order_id,
        line_id=e.line_id,
        product_id=e.product_id,
        rate_bps=e.rate_bps,
        created_at=timestamp(e.created_at),
        frozen_reason=e.frozen_reason,
    )


def leak_report_pb(r: LeakReport) -> commerce_service_pb2.CheckLeaksResponse:
    return commerce_service_pb2.CheckLeaksResponse(
        leaked_reservations=[
            commerce_service_pb2.LeakedReservation(
                order_id=h.order_id,
                state=order_state_pb(h.state),
                since=timestamp(h.since),
            )
            for h in r.reservations
        ],
        overdue_intents=[
            commerce_service_pb2.OverdueIntent(
                intent_id=i.intent_id,
                order_id=i.order_id,
                amount=money(i.amount_minor, i.currency),
                opened_at=timestamp(i.opened_at),
                checks=i.checks,
            )
            for i in r.intents
        ],
        unsettled_refunds=[
            commerce_service_pb2.UnsettledRefund(
                refund_key=u.refund_key,
                order_id=u.order_id,
                amount=money(u.amount_minor, u.currency),
                refused=u.refused,
                message=u.message,
                queued_at=timestamp(u.queued_at),
            )
            for u in r.refunds
        ],
        clean=r.clean,
        checked_at=timestamp(r.checked_at),
    )


def seller_entry_pb(e: SellerEntry) -> commissions_pb2.SellerLedgerEntry:
    return commissions_pb2.SellerLedgerEntry(
        entry_id=e.entry_id,
        seller_id=e.seller_id,
        order_id=e.order_id,
        kind=seller_entry_kind_pb(e.kind),
        account=cast("commissions_pb2.LedgerAccount.ValueType", e.account),  # stored number
        amount=money(e.amount_minor, e.currency),
        refund_id=e.refund_id,
        created_at=timestamp(e.created_at),
    )


def order_settlement_pb(
    o: OrderRecord, b: Breakdown, date: datetime | None
) -> commissions_pb2.OrderSettlement:
    message = commissions_pb2.OrderSettlement(
        order_id=o.order_id,
        seller_id=o.seller_id,
        state=order_state_pb(o.state),
        paid=money(b.paid, o.currency),
        platform_fee=money(b.platform_fee, o.currency),
        creator_commission=money(b.creator_commission, o.currency),
        refunds=money(b.refunds, o.currency),
        net_payout=money(b.net_payout, o.currency),
        settled=b.settled_at is not None,
        fulfilment_fee=money(b.fulfilment_fee, o.currency),
    )
    if date is not None:
        message.settlement_date.CopyFrom(timestamp(date))
    return message


def flash_sale_pb(f: FlashSale) -> live_pb2.FlashSale:
    return live_pb2.FlashSale(
        flash_sale_id=f.flash_sale_id,
        live_session_id=f.live_session_id,
        seller_id=f.seller_id,
        product_id=f.product_id,
        sku_id=f.sku_id,
        deal_price=money(f.deal_price_minor, f.currency),
        total_units=f.total,
        sold_units=f.sold,
        per_buyer_limit=f.per_buyer,
        starts_at=timestamp(f.starts_at),
        ends_at=timestamp(f.ends_at),
    )


def package_pb(p: PackageRecord) -> order_pb2.Package:
    message = order_pb2.Package(
        package_id=p.package_id,
        order_id=p.order_id,
        seller_id=p.seller_id,
        warehouse_id=p.warehouse_id,
        fulfilled_by_platform=p.fulfilled_by_platform,
        state=order_pb2.PackageState.ValueType(int(p.state)),
        carrier=p.carrier,
        tracking_number=p.tracking_number,
        late=p.late,
        label=p.label,
        lines=[
            order_pb2.PackageLine(line_id=line.line_id, sku_id=line.sku_id, quantity=line.quantity)
            for line in p.lines
        ],
    )
    for name in ("ship_by", "shipped_at", "deliver_by", "delivered_at", "lost_at"):
        value = getattr(p, name)
        if value is not None:
            getattr(message, name).CopyFrom(timestamp(value))
    return message


def disposition(value: int) -> Disposition:
    """A request's ReturnDisposition; INVALID_ARGUMENT for a number the proto does not define."""
    try:
        return Disposition(value)
    except ValueError:
        raise InvalidArgumentError("disposition", f"unknown disposition {value}") from None
