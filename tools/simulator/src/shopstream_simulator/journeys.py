"""A buyer's visit: ads seen and clicked, videos and live streams watched, and — for those who
buy — the order's whole life through commerce: place, pay, ship (shipping.py: packages,
carriers, the platform's centres), deliver, refund."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime

import grpc
from grpc import aio

from shopstream.ads.v1 import ads_pb2, ads_service_pb2
from shopstream.catalog.v1 import catalog_service_pb2
from shopstream.commerce.v1 import commerce_service_pb2 as cpb
from shopstream.commerce.v1 import order_pb2
from shopstream_simulator import shipping, warehouses
from shopstream_simulator.clients import ADMIN, AMBIGUOUS, EDGE, details_of
from shopstream_simulator.context import Context, Listing
from shopstream_simulator.edge import CLICKS, IMPRESSIONS, timestamp
from shopstream_simulator.ids import sub_rng
from shopstream_simulator.plan import AD_SLOTS, BuyerSession, OrderIntent, Planted
from shopstream_simulator.provision import LAGGING, until_known
from shopstream_simulator.world import Buyer

S = order_pb2.OrderState
SHIPPED_OR_LATER = frozenset(
    {S.ORDER_STATE_SHIPPED, S.ORDER_STATE_IN_TRANSIT, S.ORDER_STATE_DELIVERED}
)
PAID_OR_LATER = (
    frozenset({S.ORDER_STATE_PAID, S.ORDER_STATE_PARTIALLY_SHIPPED, S.ORDER_STATE_COMPLETED})
    | SHIPPED_OR_LATER
    | {S.ORDER_STATE_REFUNDED, S.ORDER_STATE_PARTIALLY_REFUNDED}
)
RESERVATION_WAIT_S = 30.0
PLACED_COUNTER: dict[Planted, str] = {
    "refund_heavy": "placed_refund_heavy_seller",
    "late_shipper": "placed_late_shipper",
    "split_cart": "placed_split_cart",
}
RESTOCK_UNITS = 500


async def run_session(ctx: Context, session: BuyerSession) -> None:
    buyer = ctx.world.buyers[session.buyer_index]
    ctx.ledger.traffic[f"sessions_{session.kind}"] += 1
    attribution = order_pb2.AttributionContext()
    intent = session.intent
    if session.kind == "ad" and ctx.ads_ok:
        clicked = await _see_ads(ctx, session, buyer)
        if clicked is not None and intent is not None:
            click_id, product_key = clicked
            attribution.ad_click_id = click_id
            intent = _with_product(intent, product_key)
        # Without a click on one of this world's ads, a buyer set on buying finds the product
        # in search instead (no attribution), so the order rate does not hang on the auction.
    elif session.creator_index is not None:
        attribution.creator_id = ctx.world.creators[session.creator_index].creator_id
        if session.video_id:
            attribution.video_id = session.video_id
        if session.live_key and session.live_key in ctx.lives:
            attribution.live_session_id = ctx.lives[session.live_key]
    if intent is not None:
        await buy(ctx, session, buyer, intent, attribution)


def _with_product(intent: OrderIntent, product_key: str) -> OrderIntent:
    extra = intent.extra_product_key if product_key == intent.product_key else None
    return replace(intent, product_key=product_key, extra_product_key=extra)


# --- ads --------------------------------------------------------------------------------------


async def _see_ads(ctx: Context, session: BuyerSession, buyer: Buyer) -> tuple[str, str] | None:
    """The edge runs an auction, shows the winners (impressions) and, if the buyer clicks,
    returns (click id, product key bought) for an ad of this world's campaigns."""
    listing = ctx.listings.get(session.intent.product_key) if session.intent else None
    request = ads_service_pb2.SelectAdsRequest(placement=session.placement, slots=AD_SLOTS)
    if listing is not None:
        request.context_product_ids.append(listing.product_id)
    try:
        answer = await ctx.rpc(
            ctx.services.ads.SelectAds, request, as_=EDGE, timeout_s=2.0, attempts=2
        )
    except aio.AioRpcError:
        ctx.ledger.traffic["auctions_failed"] += 1
        return None
    ctx.ledger.traffic["auctions"] += 1
    ses = f"{ctx.run_id}-ses-{session.index}"
    ads = list(answer.ads)
    # The feed shows the auction's winners on every page the buyer scrolls (one page on a
    # normal day); each slot seen is an impression with its own id, the auction's id and the
    # winner's clearing price, so ads counts and charges it like any other.
    # The feed's impressions go out together, through the producer's batch path.
    pages = ctx.plan.day.feed_pages
    last_seen: dict[int, str] = {}
    now = datetime.now(UTC)
    feed: list[tuple[str, ads_pb2.Impression, str, str]] = []
    for page in range(pages):
        for rank, ad in enumerate(ads):
            impression_id = f"{ctx.run_id}-imp-{session.index}-{page * len(ads) + rank}"
            impression = impression_of(
                ad,
                answer.auction_id,
                impression_id,
                buyer.buyer_id,
                buyer.tracking_consent,
                buyer.install_id,
                ses,
                session.placement,
                now,
            )
            feed.append((buyer.buyer_id, impression, impression_id, ad.campaign_id))
            last_seen[rank] = impression_id
    if feed:
        await ctx.edge.publish_many(IMPRESSIONS, feed, counter="impressions", at=now)
    if not session.will_click or not ads:
        return None
    # The buyer taps this world's ad when one is shown, else the top one (another
    # advertiser's: a click, but what it sells is not in this world, so no order follows it),
    # on the last page scrolled (the newest impression of it).
    rank = next((r for r, ad in enumerate(ads) if ad.campaign_id in ctx.campaigns), 0)
    ad, impression_id = ads[rank], last_seen[rank]
    # A person looks before tapping; the impression reaches Kafka before the click.
    if not await ctx.pause(sub_rng(ctx.world.seed, "glance", session.index).uniform(1.0, 3.0)):
        return None
    click_id = f"{ctx.run_id}-clk-{session.index}"
    ctx.last_click[buyer.buyer_id] = time.monotonic()
    await publish_click(
        ctx,
        ad,
        answer.auction_id,
        impression_id,
        click_id,
        buyer.buyer_id,
        buyer.tracking_consent,
        buyer.install_id,
        ses,
        session.placement,
        "clicks",
    )
    spec = ctx.campaigns.get(ad.campaign_id)
    if spec is None:
        return None
    product_key = sub_rng(ctx.world.seed, "ad-product", session.index).choice(spec.product_keys)
    return click_id, product_key


def impression_of(
    ad: ads_service_pb2.SelectedAd,
    auction_id: str,
    impression_id: str,
    buyer_id: str,
    consent: bool,
    install_id: str,
    session_id: str,
    placement: str,
    now: datetime,
) -> ads_pb2.Impression:
    return ads_pb2.Impression(
        impression_id=impression_id,
        campaign_id=ad.campaign_id,
        buyer_id=buyer_id,
        placement=placement,
        tracking_consent=consent,
        install_id=install_id,
        session_id=session_id,
        at=timestamp(now),
        clearing_price=ad.clearing_price,
        auction_id=auction_id,
    )


async def publish_impression(
    ctx: Context,
    ad: ads_service_pb2.SelectedAd,
    auction_id: str,
    impression_id: str,
    buyer_id: str,
    consent: bool,
    install_id: str,
    session_id: str,
    placement: str,
    counter: str,
    *,
    limited: bool = True,
) -> None:
    now = datetime.now(UTC)
    impression = impression_of(
        ad, auction_id, impression_id, buyer_id, consent, install_id, session_id, placement, now
    )
    await ctx.edge.publish(
        IMPRESSIONS,
        buyer_id,
        impression,
        logical_id=impression_id,
        counter=counter,
        at=now,
        limited=limited,
        tally=ad.campaign_id,
    )


async def publish_click(
    ctx: Context,
    ad: ads_service_pb2.SelectedAd,
    auction_id: str,
    impression_id: str,
    click_id: str,
    buyer_id: str,
    consent: bool,
    install_id: str,
    session_id: str,
    placement: str,
    counter: str,
    *,
    limited: bool = True,
) -> None:
    now = datetime.now(UTC)
    click = ads_pb2.Click(
        click_id=click_id,
        impression_id=impression_id,
        campaign_id=ad.campaign_id,
        buyer_id=buyer_id,
        placement=placement,
        tracking_consent=consent,
        install_id=install_id,
        session_id=session_id,
        at=timestamp(now),
        auction_id=auction_id,
    )
    if ad.bid_type == ads_pb2.BID_TYPE_CPC:
        click.clearing_price.CopyFrom(ad.clearing_price)
    # topics.yaml: clicks are keyed by install, so one device's clicks are screened together.
    await ctx.edge.publish(
        CLICKS,
        install_id or buyer_id,
        click,
        logical_id=click_id,
        counter=counter,
        at=now,
        limited=limited,
    )


# --- the order's life -------------------------------------------------------------------------


def _orderable(ctx: Context, key: str | None) -> Listing | None:
    listing = ctx.listings.get(key) if key else None
    return listing if listing is not None and listing.active and listing.sku_ids else None


async def buy(
    ctx: Context,
    session: BuyerSession,
    buyer: Buyer,
    intent: OrderIntent,
    attribution: order_pb2.AttributionContext,
) -> None:
    ledger = ctx.ledger
    listing = _orderable(ctx, intent.product_key)
    if listing is None:
        # Out of search (suppressed or held): the buyer cannot find it.
        ledger.orders["not_listed"] += 1
        return
    rng = sub_rng(ctx.world.seed, "cart", session.index)
    lines = [
        cpb.OrderLineRequest(
            sku_id=rng.choice(listing.sku_ids), quantity=intent.quantity, attribution=attribution
        )
    ]
    extra = _orderable(ctx, intent.extra_product_key)
    if extra is not None and extra.seller_id == listing.seller_id:
        lines.append(
            cpb.OrderLineRequest(
                sku_id=rng.choice(extra.sku_ids), quantity=1, attribution=attribution
            )
        )
    think = intent.think_s
    if attribution.ad_click_id:
        think = max(think, ctx.ad_rules.min_click_to_order_s + 2.0)
    if not await ctx.pause(think):
        return
    await ctx.orders_limit.take()
    if ctx.stopping.is_set():
        return
    as_buyer = ("buyer", buyer.buyer_id)
    request = cpb.PlaceOrderRequest(
        buyer_id=buyer.buyer_id,
        lines=lines,
        idempotency_key=f"{ctx.run_id}:order:{session.index}",
        tracking_consent=buyer.tracking_consent,
        ship_to_region=buyer.region,
    )
    try:
        placed = await until_known(
            lambda: ctx.rpc(
                ctx.services.commerce.PlaceOrder, request, as_=as_buyer, expected=LAGGING
            )
        )
    except aio.AioRpcError as exc:
        ledger.orders["place_failed"] += 1
        ledger.warn(f"PlaceOrder failed: {exc.code().name} {details_of(exc)}")
        return
    order = placed.order
    ledger.placed(ctx.elapsed(), order.order_id)
    if attribution.ad_click_id:
        ledger.orders["placed_with_ad_click"] += 1
    if attribution.creator_id:
        ledger.orders["placed_with_creator"] += 1
    if attribution.live_session_id:
        ledger.orders["placed_in_live"] += 1
    if session.planted is not None:
        ledger.orders[PLACED_COUNTER[session.planted]] += 1
    if session.planted == "split_cart":
        ledger.fraud.split_cart_order_id = order.order_id
    state, reason, sku = await _await_reservation(ctx, order.order_id, as_buyer)
    if state == S.ORDER_STATE_REJECTED:
        await _rejected(ctx, reason, sku, listing)
        return
    if state != S.ORDER_STATE_RESERVED:
        ledger.orders["not_reserved_in_time"] += 1
        return
    ledger.orders["reserved"] += 1
    if intent.abandon:
        if await ctx.pause(1.0):
            await _cancel(ctx, order.order_id, as_buyer, "changed my mind")
        return
    paid = await _pay(ctx, order.order_id, buyer.card_token, as_buyer)
    if paid is None:
        if intent.retry_with_backup:
            paid = await _pay(ctx, order.order_id, buyer.backup_card_token, as_buyer)
        if paid is None:
            await _cancel(ctx, order.order_id, as_buyer, "payment failed")
            return
    await _fulfil(ctx, paid, listing.seller_id, intent, session.index, as_buyer, session.planted)


async def _await_reservation(
    ctx: Context, order_id: str, as_buyer: tuple[str, str]
) -> tuple[int, str, str]:
    """Poll until catalog has answered commerce (RESERVED or REJECTED)."""
    delay = 0.05
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RESERVATION_WAIT_S
    while True:
        answer = await ctx.rpc(
            ctx.services.commerce.GetOrder, cpb.GetOrderRequest(order_id=order_id), as_=as_buyer
        )
        if answer.order.state != S.ORDER_STATE_PLACED or loop.time() > deadline:
            return answer.order.state, answer.rejection_reason, answer.rejected_sku_id
        await asyncio.sleep(delay)
        delay = min(0.5, delay * 1.5)


async def _rejected(ctx: Context, reason: str, sku_id: str, listing: Listing) -> None:
    text = reason.lower()
    if "available" in text or "stock" in text:
        ctx.ledger.rejections["out_of_stock"] += 1
        await _restock(ctx, listing, sku_id)
    elif " is " in text and "listing_status" not in text:
        # "product of SKU … is SUPPRESSED": it left search; buyers will not find it again.
        status = reason.rsplit(" ", 1)[-1]
        ctx.ledger.rejections[f"not_orderable_{status.lower()}"] += 1
        listing.status = f"LISTING_STATUS_{status}"
    else:
        ctx.ledger.rejections["other"] += 1


async def _restock(ctx: Context, listing: Listing, sku_id: str) -> None:
    """The seller refills a sold-out SKU (once at a time): in their own warehouse, or by an
    inbound shipment into the platform's centre (only received units are sellable there)."""
    if not sku_id or sku_id in ctx.restocking:
        return
    ctx.restocking.add(sku_id)
    try:
        if ctx.world.fulfilled_by_platform(listing.seller_id):
            await warehouses.restock(ctx, listing, sku_id)
            ctx.ledger.orders["restocks"] += 1
            return
        await ctx.rpc(
            ctx.services.catalog.AdjustStock,
            catalog_service_pb2.AdjustStockRequest(
                sku_id=sku_id, warehouse_id="wh-east", delta=RESTOCK_UNITS, reason="restock"
            ),
            as_=("seller", listing.seller_id),
            idempotent=False,
        )
        ctx.ledger.orders["restocks"] += 1
    except aio.AioRpcError:
        pass  # counted by Rpc; the next sold-out order tries again
    finally:
        ctx.restocking.discard(sku_id)


async def _cancel(ctx: Context, order_id: str, as_buyer: tuple[str, str], reason: str) -> None:
    try:
        await ctx.rpc(
            ctx.services.commerce.CancelOrder,
            cpb.CancelOrderRequest(order_id=order_id, reason=reason),
            as_=as_buyer,
        )
        ctx.ledger.orders["cancelled"] += 1
    except aio.AioRpcError:
        ctx.ledger.orders["cancel_failed"] += 1


async def _order(ctx: Context, order_id: str, as_: tuple[str, str]) -> order_pb2.Order:
    answer = await ctx.rpc(
        ctx.services.commerce.GetOrder, cpb.GetOrderRequest(order_id=order_id), as_=as_
    )
    return answer.order


async def _pay(
    ctx: Context, order_id: str, card_token: str, as_buyer: tuple[str, str]
) -> order_pb2.Order | None:
    """PayOrder through the sandbox provider; the paid order, or None when declined. An
    ambiguous failure (a retry after a lost answer) is settled by reading the order back."""
    ledger = ctx.ledger
    clicked = ctx.last_click.get(as_buyer[1])
    if clicked is not None:
        wait = clicked + ctx.ad_rules.min_click_to_order_s + 1.0 - time.monotonic()
        if wait > 0 and not await ctx.pause(wait):
            return None
    try:
        answer = await ctx.rpc(
            ctx.services.commerce.PayOrder,
            cpb.PayOrderRequest(order_id=order_id, card_token=card_token),
            as_=as_buyer,
            idempotent=False,
            timeout_s=10.0,
        )
        order = answer.order
    except aio.AioRpcError as exc:
        if exc.code() is grpc.StatusCode.FAILED_PRECONDITION and "declined" in details_of(exc):
            ledger.orders["payments_declined"] += 1
            return None
        order = await _order(ctx, order_id, as_buyer)
        if order.state not in PAID_OR_LATER:
            ledger.orders["payments_failed"] += 1
            return None
    ledger.paid(order.order_id, order.total.currency, order.total.amount_minor, ctx.elapsed())
    return order


async def _fulfil(
    ctx: Context,
    order: order_pb2.Order,
    seller_id: str,
    intent: OrderIntent,
    index: int,
    as_buyer: tuple[str, str],
    planted: Planted | None = None,
) -> None:
    as_seller = ("seller", seller_id)
    way = ctx.world.seller(seller_id).fulfilment
    refund = intent.refund
    if refund == "before_ship" and way == "platform":
        # The centre ships within a second of payment: a buyer who changed their mind sends
        # the parcel back instead.
        refund = "after_delivery"
    if refund == "before_ship":
        if not await ctx.pause(intent.refund_after_s):
            return
        refunded_all = await _refund(ctx, order, intent, as_buyer, as_seller)
        if refunded_all:
            return
    if way == "own_carrier":
        await _ship_own_carrier(ctx, order, intent, refund, as_buyer, as_seller)
        return
    if way == "sandbox_carrier":
        if not await ctx.pause(intent.ship_after_s):
            return
        if not await shipping.ship_with_labels(ctx, order.order_id, seller_id, index):
            return
        ctx.ledger.orders["shipped"] += 1
    tracked = await shipping.follow(ctx, order.order_id, as_buyer)
    if tracked is None:
        return
    if way == "platform" and any(
        p.state != shipping.P.PACKAGE_STATE_AWAITING_SHIPMENT for p in tracked.live
    ):
        ctx.ledger.orders["shipped"] += 1
    await shipping.record(ctx, tracked)
    if planted == "split_cart":
        ctx.ledger.fulfilment["split_cart_packages"] = len(tracked.live)
        ctx.ledger.fulfilment["split_cart_delivered"] = int(tracked.delivered)
    if tracked.lost:
        await shipping.refund_lost(ctx, tracked, as_buyer, as_seller)
        return
    if not tracked.delivered:
        return
    ctx.ledger.orders["delivered"] += 1
    if refund == "after_delivery" and await ctx.pause(intent.refund_after_s):
        if way == "platform":
            await shipping.return_to_centre(ctx, tracked, intent, index, as_buyer, as_seller)
        else:
            await _refund(ctx, tracked.order, intent, as_buyer, as_seller)


async def _ship_own_carrier(
    ctx: Context,
    order: order_pb2.Order,
    intent: OrderIntent,
    refund: str,
    as_buyer: tuple[str, str],
    as_seller: tuple[str, str],
) -> None:
    """ShipOrder with the seller's own carrier's tracking number; the buyer confirms delivery."""
    order_id = order.order_id
    if not await ctx.pause(intent.ship_after_s):
        return
    if intent.ship_late and not await shipping.wait_past_ship_by(ctx, order):
        return
    if not await _advance(
        ctx,
        lambda: ctx.rpc(
            ctx.services.commerce.ShipOrder,
            cpb.ShipOrderRequest(order_id=order_id, tracking_number=f"TRK-{order_id[-12:]}"),
            as_=as_seller,
            idempotent=False,
        ),
        order_id,
        SHIPPED_OR_LATER,
    ):
        return
    ctx.ledger.orders["shipped"] += 1
    if not await ctx.pause(intent.deliver_after_s):
        return
    if not await _advance(
        ctx,
        lambda: ctx.rpc(
            ctx.services.commerce.ConfirmDelivery,
            cpb.ConfirmDeliveryRequest(order_id=order_id),
            as_=as_buyer,
            idempotent=False,
        ),
        order_id,
        frozenset({S.ORDER_STATE_DELIVERED}),
    ):
        return
    ctx.ledger.orders["delivered"] += 1
    await shipping.record(ctx, await shipping.read(ctx, order_id, as_buyer))
    if refund == "after_delivery" and await ctx.pause(intent.refund_after_s):
        await _refund(ctx, order, intent, as_buyer, as_seller)


async def _advance(
    ctx: Context,
    call: Callable[[], Awaitable[object]],
    order_id: str,
    reached: frozenset[int],
) -> bool:
    """Make a state change that is not idempotent; when its answer is lost (deadline, server
    gone) read the order back: retry only if the change did not happen. False: gave up."""
    for _ in range(3):
        try:
            await call()
            return True
        except aio.AioRpcError as exc:
            # FAILED_PRECONDITION after a retried call: the first attempt may have done it.
            # ABORTED: the order changed under the call; read it again, retry if still needed.
            lost = exc.code() in AMBIGUOUS or exc.code() is grpc.StatusCode.ABORTED
            if not lost and exc.code() is not grpc.StatusCode.FAILED_PRECONDITION:
                raise
            failure = exc
        try:
            state = (await _order(ctx, order_id, ADMIN)).state
        except aio.AioRpcError:
            continue  # not known either way yet: try the change again
        if state in reached:
            return True
        if not lost:
            raise failure
    ctx.ledger.orders["steps_given_up"] += 1
    return False


async def _refund(
    ctx: Context,
    order: order_pb2.Order,
    intent: OrderIntent,
    as_buyer: tuple[str, str],
    as_seller: tuple[str, str],
) -> bool:
    """Buyer asks, seller approves; True when the whole order was refunded (or, before it
    shipped, cancelled: a whole-order request before shipping is a cancellation)."""
    lines: list[cpb.RefundLineRequest] = []
    if intent.partial_refund:
        first = order.lines[0]
        lines.append(cpb.RefundLineRequest(line_id=first.line_id, quantity=1))
    cancel = intent.refund == "before_ship" and not lines
    asked = await ctx.rpc(
        ctx.services.commerce.RequestRefund,
        cpb.RequestRefundRequest(
            order_id=order.order_id,
            lines=lines,
            reason="not as described"
            if intent.refund == "after_delivery"
            else "ordered by mistake",
            type=cpb.AFTER_SALE_TYPE_CANCEL if cancel else cpb.AFTER_SALE_TYPE_REFUND,
        ),
        as_=as_buyer,
        idempotent=False,
    )
    ctx.ledger.orders["refunds_requested"] += 1
    refund = asked.refund
    if not await ctx.pause(1.0):
        return False
    try:
        approved = await ctx.rpc(
            ctx.services.commerce.ApproveRefund,
            cpb.ApproveRefundRequest(refund_id=refund.refund_id),
            as_=as_seller,
        )
        state = approved.order.state
    except aio.AioRpcError as exc:
        # A retry of an approval that went through the first time.
        if "already approved" not in details_of(exc):
            raise
        state = (await _order(ctx, order.order_id, as_buyer)).state
    ctx.ledger.refunded(refund.amount.currency, refund.amount.amount_minor)
    return state in (S.ORDER_STATE_REFUNDED, S.ORDER_STATE_CANCELLED)
