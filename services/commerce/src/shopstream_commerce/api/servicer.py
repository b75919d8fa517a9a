"""CommerceService over gRPC: requests to use cases and results to responses, nothing more."""

from __future__ import annotations

from typing import Any

from shopstream.commerce.v1 import commerce_service_pb2 as pb
from shopstream.commerce.v1 import commerce_service_pb2_grpc, commissions_pb2, order_pb2
from shopstream.common.v1 import paging_pb2
from shopstream_commerce import convert
from shopstream_commerce.domain import limits
from shopstream_commerce.domain.limits import bounded
from shopstream_commerce.domain.records import Attribution, OrderRecord
from shopstream_commerce.usecases.after_sales import AfterSales
from shopstream_commerce.usecases.commissions import Commissions
from shopstream_commerce.usecases.flash_sales import FlashSales
from shopstream_commerce.usecases.fulfilment import Fulfilment
from shopstream_commerce.usecases.leaks import LeakCheck
from shopstream_commerce.usecases.live import Live
from shopstream_commerce.usecases.orders import LineRequest, Orders
from shopstream_commerce.usecases.settlements import SellerLedger
from shopstream_platform.errors import InvalidArgumentError
from shopstream_platform.grpc.auth import Principal, current_principal

Context = Any


def _order_view(principal: Principal, order: OrderRecord) -> order_pb2.Order:
    """Sellers see their orders without the lines' ad click ids (docs/commerce.md, privacy)."""
    return convert.order_pb(order, ad_click_ids=principal.role != "seller")


class CommerceServicer(commerce_service_pb2_grpc.CommerceServiceServicer):
    def __init__(
        self,
        orders: Orders,
        after_sales: AfterSales,
        live: Live,
        commissions: Commissions,
        leak_check: LeakCheck,
        seller_ledger: SellerLedger,
        flash_sales: FlashSales,
        fulfilment: Fulfilment,
    ) -> None:
        self._fulfilment = fulfilment
        self._orders = orders
        self._after_sales = after_sales
        self._live = live
        self._commissions = commissions
        self._leak_check = leak_check
        self._seller_ledger = seller_ledger
        self._flash_sales = flash_sales

    async def PlaceOrder(
        self, request: pb.PlaceOrderRequest, context: Context
    ) -> pb.PlaceOrderResponse:
        lines = [
            LineRequest(
                sku_id=line.sku_id,
                quantity=line.quantity,
                attribution=Attribution(
                    creator_id=line.attribution.creator_id,
                    live_session_id=line.attribution.live_session_id,
                    video_id=line.attribution.video_id,
                    ad_click_id=line.attribution.ad_click_id,
                ),
            )
            for line in request.lines
        ]
        order = await self._orders.place(
            current_principal(),
            request.buyer_id,
            lines,
            request.idempotency_key,
            request.tracking_consent,
            request.ship_to_region,
        )
        return pb.PlaceOrderResponse(order=convert.order_pb(order))

    async def GetOrder(self, request: pb.GetOrderRequest, context: Context) -> pb.GetOrderResponse:
        principal = current_principal()
        order, packages = await self._orders.get_with_packages(principal, request.order_id)
        return pb.GetOrderResponse(
            order=_order_view(principal, order),
            rejection_reason=order.rejection_reason,
            rejected_sku_id=order.rejected_sku_id,
            packages=[convert.package_pb(p) for p in packages],
        )

    async def ListOrders(
        self, request: pb.ListOrdersRequest, context: Context
    ) -> pb.ListOrdersResponse:
        principal = current_principal()
        found, token = await self._orders.list(
            principal,
            request.buyer_id,
            request.seller_id,
            request.page.page_size,
            request.page.page_token,
        )
        return pb.ListOrdersResponse(
            orders=[_order_view(principal, o) for o in found],
            page=paging_pb2.PageInfo(next_page_token=token, total_size=-1),
        )

    async def PayOrder(self, request: pb.PayOrderRequest, context: Context) -> pb.PayOrderResponse:
        order, payment_id = await self._orders.pay(
            current_principal(), request.order_id, request.card_token
        )
        return pb.PayOrderResponse(order=convert.order_pb(order), payment_id=payment_id)

    async def CancelOrder(
        self, request: pb.CancelOrderRequest, context: Context
    ) -> pb.CancelOrderResponse:
        order = await self._orders.cancel(current_principal(), request.order_id, request.reason)
        return pb.CancelOrderResponse(order=convert.order_pb(order))

    async def ShipOrder(
        self, request: pb.ShipOrderRequest, context: Context
    ) -> pb.ShipOrderResponse:
        principal = current_principal()
        order = await self._orders.ship(principal, request.order_id, request.tracking_number)
        return pb.ShipOrderResponse(order=_order_view(principal, order))

    async def ConfirmDelivery(
        self, request: pb.ConfirmDeliveryRequest, context: Context
    ) -> pb.ConfirmDeliveryResponse:
        order = await self._orders.confirm_delivery(current_principal(), request.order_id)
        return pb.ConfirmDeliveryResponse(order=convert.order_pb(order))

    async def ShipPackage(
        self, request: pb.ShipPackageRequest, context: Context
    ) -> pb.ShipPackageResponse:
        principal = current_principal()
        package, order = await self._fulfilment.ship_package(
            principal, request.package_id, request.tracking_number
        )
        return pb.ShipPackageResponse(
            package=convert.package_pb(package), order=_order_view(principal, order)
        )

    async def ListPackages(
        self, request: pb.ListPackagesRequest, context: Context
    ) -> pb.ListPackagesResponse:
        found, token = await self._fulfilment.list(
            current_principal(),
            request.order_id,
            request.seller_id,
            request.page.page_size,
            request.page.page_token,
        )
        return pb.ListPackagesResponse(
            packages=[convert.package_pb(p) for p in found],
            page=paging_pb2.PageInfo(next_page_token=token, total_size=-1),
        )

    async def RequestRefund(
        self, request: pb.RequestRefundRequest, context: Context
    ) -> pb.RequestRefundResponse:
        wanted: dict[str, int] = {}
        for line in request.lines:
            bounded("lines.line_id", line.line_id, limits.ID)
            if line.line_id in wanted:
                raise InvalidArgumentError("lines", f"line {line.line_id!r} is listed twice")
            wanted[line.line_id] = line.quantity
        refund = await self._after_sales.request(
            current_principal(),
            request.order_id,
            wanted,
            request.reason,
            convert.after_sale_type(request.type),
        )
        return pb.RequestRefundResponse(refund=convert.refund_pb(refund))

    async def ApproveRefund(
        self, request: pb.ApproveRefundRequest, context: Context
    ) -> pb.ApproveRefundResponse:
        principal = current_principal()
        refund, order = await self._after_sales.approve(principal, request.refund_id)
        return pb.ApproveRefundResponse(
            refund=convert.refund_pb(refund), order=_order_view(principal, order)
        )

    async def RejectRefund(
        self, request: pb.RejectRefundRequest, context: Context
    ) -> pb.RejectRefundResponse:
        principal = current_principal()
        refund, order = await self._after_sales.reject(
            principal, request.refund_id, request.reason, request.note
        )
        return pb.RejectRefundResponse(
            refund=convert.refund_pb(refund), order=_order_view(principal, order)
        )

    async def ShipReturn(
        self, request: pb.ShipReturnRequest, context: Context
    ) -> pb.ShipReturnResponse:
        refund, _ = await self._after_sales.ship_return(
            current_principal(), request.refund_id, request.tracking_number
        )
        return pb.ShipReturnResponse(refund=convert.refund_pb(refund))

    async def ReceiveReturn(
        self, request: pb.ReceiveReturnRequest, context: Context
    ) -> pb.ReceiveReturnResponse:
        principal = current_principal()
        refund, order = await self._after_sales.receive_return(
            principal,
            request.refund_id,
            convert.disposition(request.disposition),
            request.disposition_reason,
        )
        return pb.ReceiveReturnResponse(
            refund=convert.refund_pb(refund), order=_order_view(principal, order)
        )

    async def EscalateRefund(
        self, request: pb.EscalateRefundRequest, context: Context
    ) -> pb.EscalateRefundResponse:
        refund, _ = await self._after_sales.escalate(
            current_principal(), request.refund_id, request.note
        )
        return pb.EscalateRefundResponse(refund=convert.refund_pb(refund))

    async def StartLiveSession(
        self, request: pb.StartLiveSessionRequest, context: Context
    ) -> pb.StartLiveSessionResponse:
        record = await self._live.start(
            current_principal(),
            request.creator_id,
            request.title,
            list(request.pinned_product_ids),
            request.live_session_id,
        )
        return pb.StartLiveSessionResponse(session=convert.live_pb(record))

    async def ScheduleLiveSession(
        self, request: pb.ScheduleLiveSessionRequest, context: Context
    ) -> pb.ScheduleLiveSessionResponse:
        record = await self._live.schedule(
            current_principal(),
            request.creator_id,
            request.title,
            list(request.pinned_product_ids),
            convert.optional_time(request, "starts_at"),
        )
        return pb.ScheduleLiveSessionResponse(session=convert.live_pb(record))

    async def PinProduct(
        self, request: pb.PinProductRequest, context: Context
    ) -> pb.PinProductResponse:
        record = await self._live.pin(
            current_principal(), request.live_session_id, request.product_id
        )
        return pb.PinProductResponse(session=convert.live_pb(record))

    async def EndLiveSession(
        self, request: pb.EndLiveSessionRequest, context: Context
    ) -> pb.EndLiveSessionResponse:
        record = await self._live.end(current_principal(), request.live_session_id)
        return pb.EndLiveSessionResponse(session=convert.live_pb(record))

    async def GetLiveSession(
        self, request: pb.GetLiveSessionRequest, context: Context
    ) -> pb.GetLiveSessionResponse:
        return pb.GetLiveSessionResponse(
            session=convert.live_pb(await self._live.get(request.live_session_id))
        )

    async def StartFlashSale(
        self, request: pb.StartFlashSaleRequest, context: Context
    ) -> pb.StartFlashSaleResponse:
        sale = await self._flash_sales.start(
            current_principal(),
            request.live_session_id,
            request.sku_id,
            request.deal_price.amount_minor,
            request.deal_price.currency,
            request.total_units,
            request.per_buyer_limit,
            request.countdown_s,
            request.duration_s,
        )
        return pb.StartFlashSaleResponse(sale=convert.flash_sale_pb(sale))

    async def GetFlashSale(
        self, request: pb.GetFlashSaleRequest, context: Context
    ) -> pb.GetFlashSaleResponse:
        sale = await self._flash_sales.get(request.flash_sale_id)
        return pb.GetFlashSaleResponse(sale=convert.flash_sale_pb(sale))

    async def SetCommissionRate(
        self, request: pb.SetCommissionRateRequest, context: Context
    ) -> pb.SetCommissionRateResponse:
        rate = await self._commissions.set_rate(
            current_principal(),
            request.seller_id,
            request.product_id,
            request.rate_bps,
            request.creator_id,
            request.shop_ads,
            request.require_approval,
        )
        return pb.SetCommissionRateResponse(
            rate_bps=rate.rate_bps,
            previous_rate_bps=rate.previous_bps,
            effective_from_unix=int(rate.effective_from.timestamp()),
            locked_creator_ids=rate.locked_creators,
            locked_until_unix=int(rate.locked_until.timestamp()) if rate.locked_creators else 0,
        )

    async def ApproveCreator(
        self, request: pb.ApproveCreatorRequest, context: Context
    ) -> pb.ApproveCreatorResponse:
        await self._commissions.approve_creator(
            current_principal(), request.seller_id, request.product_id, request.creator_id
        )
        return pb.ApproveCreatorResponse()

    async def GetCreatorEarnings(
        self, request: pb.GetCreatorEarningsRequest, context: Context
    ) -> pb.GetCreatorEarningsResponse:
        balances, currency, entries, token = await self._commissions.earnings(
            current_principal(), request.creator_id, request.page.page_size, request.page.page_token
        )
        pending = balances.get(commissions_pb2.LEDGER_ACCOUNT_PENDING, 0)
        available = balances.get(commissions_pb2.LEDGER_ACCOUNT_AVAILABLE, 0)
        frozen = balances.get(commissions_pb2.LEDGER_ACCOUNT_FROZEN, 0)
        return pb.GetCreatorEarningsResponse(
            balance=convert.money(pending + available + frozen, currency),
            pending=convert.money(pending, currency),
            available=convert.money(available, currency),
            frozen=convert.money(frozen, currency),
            entries=[convert.ledger_pb(e) for e in entries],
            page=paging_pb2.PageInfo(next_page_token=token, total_size=-1),
        )

    async def GetOrderSettlement(
        self, request: pb.GetOrderSettlementRequest, context: Context
    ) -> pb.GetOrderSettlementResponse:
        order, found, date = await self._seller_ledger.order_settlement(
            current_principal(), request.order_id
        )
        return pb.GetOrderSettlementResponse(
            settlement=convert.order_settlement_pb(order, found, date)
        )

    async def GetSellerBalance(
        self, request: pb.GetSellerBalanceRequest, context: Context
    ) -> pb.GetSellerBalanceResponse:
        balances, currency, entries, token = await self._seller_ledger.balance(
            current_principal(), request.seller_id, request.page.page_size, request.page.page_token
        )
        pending = balances.get(commissions_pb2.LEDGER_ACCOUNT_PENDING, 0)
        available = balances.get(commissions_pb2.LEDGER_ACCOUNT_AVAILABLE, 0)
        return pb.GetSellerBalanceResponse(
            balance=convert.money(pending + available, currency),
            pending=convert.money(pending, currency),
            available=convert.money(available, currency),
            entries=[convert.seller_entry_pb(e) for e in entries],
            page=paging_pb2.PageInfo(next_page_token=token, total_size=-1),
        )

    async def CheckLeaks(
        self, request: pb.CheckLeaksRequest, context: Context
    ) -> pb.CheckLeaksResponse:
        return convert.leak_report_pb(await self._leak_check.check())
