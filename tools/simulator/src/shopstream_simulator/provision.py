"""Setting up the world through the services' real APIs: sellers, listings and their review,
commission rates, ad campaigns, and the creators' history on the social topics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import grpc
from grpc import aio

from shopstream.ads.v1 import ads_pb2, ads_service_pb2
from shopstream.catalog.v1 import catalog_pb2, catalog_service_pb2
from shopstream.commerce.v1 import commerce_service_pb2
from shopstream.common.v1 import money_pb2
from shopstream.social.v1 import creators_pb2 as social
from shopstream_simulator import warehouses
from shopstream_simulator.clients import ADMIN, details_of, status_of
from shopstream_simulator.context import Context, Listing
from shopstream_simulator.edge import CONTENT, PROFILES, timestamp
from shopstream_simulator.plan import Video
from shopstream_simulator.world import CampaignSpec, Creator, ProductSpec, Seller

Progress = Callable[[str, int, int], None]
T = TypeVar("T")

# Hold reasons the simulated reviewer waves through; anything else stays for a human.
ROUTINE_HOLDS = frozenset({"NEW_SELLER"})
PRICE_RULE = "PRICE_FAR_BELOW_MEDIAN"


def money(amount_minor: int, currency: str) -> money_pb2.Money:
    return money_pb2.Money(amount_minor=amount_minor, currency=currency)


async def _each(
    items: Iterable[T], work: Callable[[T], Awaitable[None]], stage: str, progress: Progress
) -> None:
    todo = list(items)
    done = 0
    progress(stage, 0, len(todo))

    async def one(item: T) -> None:
        nonlocal done
        await work(item)
        done += 1
        progress(stage, done, len(todo))

    await asyncio.gather(*(one(i) for i in todo))


# What a call answers while another service has not caught up yet.
LAGGING = frozenset({grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT})


async def until_known(call: Callable[[], Awaitable[T]], seconds: float = 90.0) -> T:
    """Retry a call that fails until another service has caught up through Kafka (commerce
    learns products from catalog's events a moment after they are created; a fresh service
    first reads the topic's history, which can take a while)."""
    deadline = asyncio.get_running_loop().time() + seconds
    delay = 0.1
    while True:
        try:
            return await call()
        except aio.AioRpcError as exc:
            lagging = exc.code() is grpc.StatusCode.NOT_FOUND or (
                exc.code() is grpc.StatusCode.INVALID_ARGUMENT and "unknown SKU" in details_of(exc)
            )
            if not lagging or asyncio.get_running_loop().time() + delay > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(1.0, delay * 2)


async def provision(ctx: Context, progress: Progress) -> None:
    world = ctx.world
    await _check_categories(ctx)
    await _each(world.sellers, lambda s: _register(ctx, s), "registering sellers", progress)
    await _each(world.regular_products, lambda p: _create(ctx, p), "creating listings", progress)
    held = [
        listing
        for listing in ctx.listings.values()
        if listing.status == "LISTING_STATUS_PENDING_REVIEW"
        and set(listing.reasons) <= ROUTINE_HOLDS
    ]
    await _each(held, lambda listing: _approve(ctx, listing), "reviewing new sellers", progress)
    for listing in ctx.listings.values():
        if not listing.active:
            ctx.ledger.warn(
                f"honest listing {listing.key} is {listing.status} ({', '.join(listing.reasons)})"
            )
    await _platform_stock(ctx, progress)
    paying = [p for p in world.regular_products if p.commission_bps > 0]
    await _each(paying, lambda p: _commission(ctx, p), "setting commission rates", progress)
    await _campaigns(ctx, progress)
    await _each(world.creators, lambda c: _creator_history(ctx, c), "creator history", progress)
    fraud = ctx.ledger.fraud
    fraud.bot_install_ids = [b.install_id for b in world.bots]
    fraud.bot_buyer_ids = [i for b in world.bots for i in b.buyer_ids]
    fraud.fake_follower_creator_ids = [c.creator_id for c in world.fake_creators]
    heavy = world.refund_heavy_seller
    fraud.refund_heavy_seller_id = heavy.seller_id
    fraud.refund_heavy_product_ids = [
        listing.product_id
        for listing in ctx.listings.values()
        if listing.seller_id == heavy.seller_id
    ]
    fraud.late_shipper_id = world.late_shipper.seller_id


async def _platform_stock(ctx: Context, progress: Progress) -> None:
    """The run's fulfilment centres, and each platform-fulfilled seller's stock sent in."""
    world = ctx.world
    sellers = [s.seller_id for s in world.sellers if s.fulfilment == "platform"]
    if not sellers:
        return
    await warehouses.register_centres(ctx)
    products = {s: [p for p in world.regular_products if p.seller_id == s] for s in sellers}
    await _each(
        sellers,
        lambda s: warehouses.send_stock_in(ctx, s, products[s]),
        "stock into the platform's centres",
        progress,
    )


async def _check_categories(ctx: Context) -> None:
    answer = await ctx.rpc(
        ctx.services.catalog.ListCategories, catalog_service_pb2.ListCategoriesRequest()
    )
    known = {c.category_id for c in answer.categories}
    missing = [c.category_id for c in ctx.world.categories if c.category_id not in known]
    if missing:
        raise RuntimeError(f"catalog does not know the categories {', '.join(missing)}")


async def _register(ctx: Context, seller: Seller) -> None:
    try:
        await ctx.rpc(
            ctx.services.catalog.RegisterSeller,
            catalog_service_pb2.RegisterSellerRequest(
                seller_id=seller.seller_id, display_name=seller.display_name, country=seller.country
            ),
            as_=("seller", seller.seller_id),
        )
        ctx.ledger.orders["sellers_registered"] += 1
    except aio.AioRpcError as exc:
        # A retry of a registration that went through: the seller is there, which is the point.
        if exc.code() is not grpc.StatusCode.ALREADY_EXISTS:
            raise


async def create_listing(ctx: Context, product: ProductSpec) -> Listing:
    request = catalog_service_pb2.CreateProductRequest(
        seller_id=product.seller_id,
        title=product.title,
        description=product.description,
        category_id=product.category,
        brand=product.brand,
        attributes=product.attributes,
        skus=[
            catalog_service_pb2.NewSku(
                sku_code=sku.code,
                variant_attributes=sku.variant,
                price=money(sku.price_minor, ctx.world.currency),
                # A platform-fulfilled seller's stock is sent into the centres (warehouses.py):
                # catalog refuses initial stock in a platform warehouse.
                stock={} if ctx.world.fulfilled_by_platform(product.seller_id) else sku.stock,
            )
            for sku in product.skus
        ],
        idempotency_key=f"{ctx.run_id}:{product.key}",
    )
    answer = await ctx.rpc(
        ctx.services.catalog.CreateProduct, request, as_=("seller", product.seller_id)
    )
    listing = _listing(product, answer.product)
    ctx.listings[product.key] = listing
    ctx.ledger.orders["listings_created"] += 1
    return listing


def _listing(product: ProductSpec, pb: catalog_pb2.Product) -> Listing:
    return Listing(
        key=product.key,
        product_id=pb.product_id,
        seller_id=product.seller_id,
        category=product.category,
        sku_ids=[s.sku_id for s in pb.skus],
        status=catalog_pb2.ListingStatus.Name(pb.status),
        reasons=[r.code for r in pb.status_reasons],
    )


async def _create(ctx: Context, product: ProductSpec) -> None:
    await create_listing(ctx, product)


async def _approve(ctx: Context, listing: Listing) -> None:
    answer = await ctx.rpc(
        ctx.services.catalog.ReviewListing,
        catalog_service_pb2.ReviewListingRequest(
            product_id=listing.product_id,
            decision=catalog_service_pb2.REVIEW_DECISION_APPROVE,
            reason="new seller's listing checked by the simulated reviewer",
        ),
        as_=ADMIN,
    )
    listing.status = catalog_pb2.ListingStatus.Name(answer.product.status)
    listing.reasons = [r.code for r in answer.product.status_reasons]


async def _commission(ctx: Context, product: ProductSpec) -> None:
    listing = ctx.listings.get(product.key)
    if listing is None:
        return
    request = commerce_service_pb2.SetCommissionRateRequest(
        seller_id=product.seller_id, product_id=listing.product_id, rate_bps=product.commission_bps
    )
    await until_known(
        lambda: ctx.rpc(
            ctx.services.commerce.SetCommissionRate,
            request,
            as_=("seller", product.seller_id),
            expected=LAGGING,
        )
    )


async def _campaigns(ctx: Context, progress: Progress) -> None:
    if not ctx.services.serving("ads"):
        ctx.ledger.warn("ads is not serving: no campaigns, impressions, clicks or bots this run")
        return
    try:
        rules = await ctx.rpc(
            ctx.services.ads.GetAttributionSettings,
            ads_service_pb2.GetAttributionSettingsRequest(),
            attempts=2,
        )
        ctx.ad_rules.min_click_to_order_s = float(rules.min_click_to_order_seconds)
        ctx.ad_rules.burst_limit = rules.burst_limit or ctx.ad_rules.burst_limit
        ctx.ad_rules.burst_window_s = float(rules.burst_window_seconds or 60)
        await _each(ctx.world.campaigns, lambda c: _campaign(ctx, c), "ad campaigns", progress)
    except aio.AioRpcError as exc:
        ctx.ledger.warn(f"ads answered {exc.code().name} ({details_of(exc)}): running without ads")
        return
    ctx.ads_ok = bool(ctx.campaigns)


async def _campaign(ctx: Context, spec: CampaignSpec) -> None:
    listings = [ctx.listings[k] for k in spec.product_keys if k in ctx.listings]
    if not listings:
        return
    currency = ctx.world.currency
    request = ads_service_pb2.CreateCampaignRequest(
        request_id=f"{ctx.run_id}:{spec.key}",
        advertiser_id=spec.seller_id,
        name=spec.name,
        promoted_product_ids=[listing.product_id for listing in listings],
        promoted_creator_ids=list(spec.creator_ids),
        bid_type=ads_pb2.BID_TYPE_CPC if spec.bid_type == "CPC" else ads_pb2.BID_TYPE_CPM,
        bid=money(spec.bid_minor, currency),
        daily_budget=money(spec.daily_budget_minor, currency),
        total_budget=money(spec.total_budget_minor, currency),
        placements=list(spec.placements),
        # A flight for this day only: a later run's campaigns do not compete with old ones.
        ends_at=timestamp(datetime.now(UTC) + timedelta(seconds=_flight_s(ctx))),
    )
    answer = await ctx.rpc(ctx.services.ads.CreateCampaign, request, as_=("seller", spec.seller_id))
    ctx.campaigns[answer.campaign.campaign_id] = spec


def _flight_s(ctx: Context) -> float:
    c = ctx.config
    return c.duration_s + c.drain_s + c.verify_s + 60.0


def _profile(creator: Creator, followers: int, at: datetime) -> social.CreatorProfile:
    return social.CreatorProfile(
        creator_id=creator.creator_id,
        display_name=creator.display_name,
        followers=followers,
        mcn_agency=creator.mcn,
        declared_categories=list(creator.categories),
        country=creator.country,
        at=timestamp(at),
    )


async def publish_profile(
    ctx: Context, creator: Creator, followers: int, at: datetime, logical_id: str
) -> None:
    await ctx.edge.publish(
        PROFILES,
        creator.creator_id,
        _profile(creator, followers, at),
        logical_id=logical_id,
        counter="profiles",
        at=at,
    )


async def publish_video_stats(ctx: Context, video: Video, plan_s: float, logical_id: str) -> None:
    creator = ctx.world.creators[video.creator_index]
    views, likes, comments, shares = video.counters(plan_s)
    now = datetime.now(UTC)
    stats = social.ContentStats(
        content_id=video.content_id,
        creator_id=creator.creator_id,
        kind=social.CONTENT_KIND_VIDEO,
        views=views,
        likes=likes,
        comments=comments,
        shares=shares,
        published_at=timestamp(ctx.wall(video.published_at)),
        at=timestamp(now),
    )
    await ctx.edge.publish(
        CONTENT, creator.creator_id, stats, logical_id=logical_id, counter="content_stats", at=now
    )


async def _creator_history(ctx: Context, creator: Creator) -> None:
    """Yesterday's and today's profile (the follower history the score reads), then the
    creator's recent videos with their counters."""
    now = ctx.wall_started
    await publish_profile(
        ctx,
        creator,
        creator.followers_yesterday,
        now - timedelta(days=1),
        f"{creator.creator_id}:profile:yesterday",
    )
    await publish_profile(
        ctx, creator, creator.followers, now, f"{creator.creator_id}:profile:today"
    )
    for video in ctx.plan.baseline_videos:
        if ctx.world.creators[video.creator_index] is creator:
            await publish_video_stats(ctx, video, 0.0, f"{video.content_id}:baseline")


def held_for_price(listing: Listing) -> bool:
    return listing.status != "LISTING_STATUS_ACTIVE" and PRICE_RULE in listing.reasons


async def plant_counterfeit(ctx: Context, product: ProductSpec) -> None:
    """A bargain shop lists a knock-off far under the category median; catalog should hold it."""
    try:
        listing = await create_listing(ctx, product)
    except aio.AioRpcError as exc:
        ctx.ledger.warn(
            f"counterfeit {product.key} not created: {status_of(exc)} {details_of(exc)}"
        )
        return
    ctx.ledger.fraud.counterfeit_products[product.key] = listing.product_id
    ctx.ledger.fraud.counterfeit_verdicts[product.key] = [listing.status, *listing.reasons]
    ctx.ledger.traffic["counterfeit_listings"] += 1
