"""The social platform's side of the day: video stats, live shows (with commerce's live sessions),
follower counts — including bought followers — and the click-spam bots of the ad network."""

from __future__ import annotations

from datetime import UTC, datetime

from grpc import aio

from shopstream.ads.v1 import ads_service_pb2
from shopstream.commerce.v1 import commerce_service_pb2 as cpb
from shopstream.social.v1 import creators_pb2 as social
from shopstream.social.v1 import live_pb2
from shopstream_simulator.clients import EDGE, details_of
from shopstream_simulator.context import Context
from shopstream_simulator.edge import CONTENT, LIVE_STATS, timestamp
from shopstream_simulator.journeys import publish_click, publish_impression
from shopstream_simulator.plan import (
    BotBurst,
    ContentReport,
    LiveEnd,
    LiveStart,
    LiveTick,
    ProfileUpdate,
    StatsTick,
)
from shopstream_simulator.provision import publish_profile, publish_video_stats


async def content_report(ctx: Context, action: ContentReport) -> None:
    video = ctx.plan.videos_by_id[action.content_id]
    await publish_video_stats(ctx, video, action.at, f"{video.content_id}:{action.seq}")


async def stats_tick(ctx: Context, action: StatsTick) -> None:
    """A large day: the social platform reports every hot video's counters at once."""
    for video in ctx.plan.hot_videos(action.at):
        if ctx.stopping.is_set():
            return
        await publish_video_stats(ctx, video, action.at, f"{video.content_id}:{action.seq}")


async def profile_update(ctx: Context, action: ProfileUpdate) -> None:
    creator = ctx.world.creators[action.creator_index]
    await publish_profile(
        ctx,
        creator,
        action.followers,
        datetime.now(UTC),
        f"{creator.creator_id}:profile:{action.seq}",
    )
    if action.reason == "bought":
        ctx.ledger.traffic["fake_follower_spikes"] += 1


async def live_start(ctx: Context, action: LiveStart) -> None:
    show = ctx.plan.lives_by_key[action.key]
    creator = ctx.world.creators[show.creator_index]
    pinned = [ctx.listings[k].product_id for k in show.product_keys if k in ctx.listings]
    # The last product is pinned during the show; the rest from the start.
    first = pinned[:-1] if len(pinned) > 1 else pinned
    answer = await ctx.rpc(
        ctx.services.commerce.StartLiveSession,
        cpb.StartLiveSessionRequest(
            creator_id=creator.creator_id, title=show.title, pinned_product_ids=first
        ),
        as_=("creator", creator.creator_id),
        idempotent=False,
    )
    session_id = answer.session.live_session_id
    ctx.lives[action.key] = session_id
    ctx.lives_open.add(action.key)
    ctx.ledger.traffic["live_sessions"] += 1


async def live_tick(ctx: Context, action: LiveTick) -> None:
    session_id = ctx.lives.get(action.key)
    if session_id is None or action.key not in ctx.lives_open:
        return
    show = ctx.plan.lives_by_key[action.key]
    creator = ctx.world.creators[show.creator_index]
    current, total, likes, comments, shares = show.stats(action.at)
    now = datetime.now(UTC)
    stats = live_pb2.LiveViewStats(
        live_session_id=session_id,
        creator_id=creator.creator_id,
        current_viewers=current,
        total_views=total,
        likes=likes,
        comments=comments,
        shares=shares,
        at=timestamp(now),
    )
    await ctx.edge.publish(
        LIVE_STATS,
        session_id,
        stats,
        logical_id=f"{action.key}:{action.seq}",
        counter="live_stats",
        at=now,
    )
    tick = round((action.at - show.start) / 3.0)
    if tick % 3 == 0:
        content = social.ContentStats(
            content_id=session_id,
            creator_id=creator.creator_id,
            kind=social.CONTENT_KIND_LIVE,
            views=total,
            likes=likes,
            comments=comments,
            shares=shares,
            published_at=timestamp(ctx.wall(show.start)),
            at=timestamp(now),
        )
        await ctx.edge.publish(
            CONTENT,
            creator.creator_id,
            content,
            logical_id=f"{action.key}:content:{action.seq}",
            counter="content_stats",
            at=now,
        )
    midpoint = (show.start + show.end) / 2
    if len(show.product_keys) > 1 and midpoint <= action.at < midpoint + 3.0:
        last = ctx.listings.get(show.product_keys[-1])
        if last is not None:
            await ctx.rpc(
                ctx.services.commerce.PinProduct,
                cpb.PinProductRequest(live_session_id=session_id, product_id=last.product_id),
                as_=("creator", creator.creator_id),
            )
            ctx.ledger.traffic["products_pinned"] += 1


async def live_end(ctx: Context, action: LiveEnd) -> None:
    await end_live(ctx, action.key)


async def end_live(ctx: Context, key: str) -> None:
    session_id = ctx.lives.get(key)
    if session_id is None or key not in ctx.lives_open:
        return
    ctx.lives_open.discard(key)
    creator = ctx.world.creators[ctx.plan.lives_by_key[key].creator_index]
    await ctx.rpc(
        ctx.services.commerce.EndLiveSession,
        cpb.EndLiveSessionRequest(live_session_id=session_id),
        as_=("creator", creator.creator_id),
        idempotent=False,
    )


async def bot_burst(ctx: Context, action: BotBurst) -> None:
    """One install fires well over a hundred clicks within a minute, rotating throwaway accounts
    (so each account stays under the per-buyer limit): the device burst ads must catch."""
    if not ctx.ads_ok:
        ctx.ledger.warn("bots skipped: ads is not available")
        return
    bot = ctx.world.bots[action.bot_index]
    interval = action.span_s / bot.clicks
    for k in range(bot.clicks):
        if ctx.stopping.is_set():
            return
        buyer_id = bot.buyer_ids[k % len(bot.buyer_ids)]
        try:
            answer = await ctx.rpc(
                ctx.services.ads.SelectAds,
                ads_service_pb2.SelectAdsRequest(placement="feed", slots=1),
                as_=EDGE,
                timeout_s=2.0,
                attempts=2,
            )
        except aio.AioRpcError as exc:
            ctx.ledger.warn(f"bot auction failed: {details_of(exc)}")
            continue
        if not answer.ads:
            continue
        ad = answer.ads[0]
        ses = f"{ctx.run_id}-botses-{action.bot_index}"
        imp = f"{ctx.run_id}-botimp-{action.bot_index}-{k}"
        await publish_impression(
            ctx,
            ad,
            answer.auction_id,
            imp,
            buyer_id,
            True,
            bot.install_id,
            ses,
            "feed",
            "bot_impressions",
            limited=False,
        )
        await publish_click(
            ctx,
            ad,
            answer.auction_id,
            imp,
            f"{ctx.run_id}-botclk-{action.bot_index}-{k}",
            buyer_id,
            True,
            bot.install_id,
            ses,
            "feed",
            "bot_clicks",
            limited=False,
        )
        if not await ctx.pause(interval):
            return
