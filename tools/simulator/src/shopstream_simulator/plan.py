"""The script of a run: what happens when, decided from the seed before anything is sent.

Buyer sessions arrive in bursts; creators post videos and go live; the fraudsters act at fixed
points of the run. Every decision a buyer makes (click, buy, pay, refund) is drawn here from the
session's own random stream, so the same seed plays the same story whatever the services answer.
Times are seconds from the start of traffic; negative times are before the run (history).
"""

from __future__ import annotations

import bisect
import heapq
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from shopstream_simulator.distributions import Weighted, bursty_arrivals, clamp
from shopstream_simulator.ids import sub_rng
from shopstream_simulator.world import Creator, ProductSpec, World

SessionKind = Literal["ad", "video", "live", "search"]
RefundWhen = Literal["none", "before_ship", "after_delivery"]
# Orders planted for what they show: the refund-heavy seller's, the late shipper's (issue 20:
# its tier drops for late parcels) and a cart split across the platform's two centres.
Planted = Literal["refund_heavy", "late_shipper", "split_cart"]

KIND_SHARES: dict[SessionKind, float] = {"ad": 0.40, "video": 0.30, "live": 0.18, "search": 0.12}
P_CLICK = 0.15
P_BUY_AFTER_CLICK = 0.40
P_BUY: dict[SessionKind, float] = {
    "ad": P_CLICK * P_BUY_AFTER_CLICK,
    "video": 0.10,
    "live": 0.16,
    "search": 0.30,
}
AD_SLOTS = 2


@dataclass(frozen=True)
class DayShape:
    """How much of a day is looking rather than buying.

    A normal day: an ad visit sees one page of ads (the auction's `AD_SLOTS` winners), and a new
    video's counters are reported at `VIDEO_REPORT_OFFSETS`. A large day is what a busy social
    app sees: an ad visit is a feed scroll through `feed_pages` pages, each showing the winners
    of the one auction that ranked the session's ads (an ad server ranks once per feed request,
    not once per impression: every impression carries that auction's id and clearing price);
    the purchase intent of a visit is `buy_scale` of a normal day's (most viewers only watch);
    and every video still hot (posted within `HOT_STATS_S`) reports its counters every
    `stats_every_s` seconds, from a feed that was already running before the traffic started.
    """

    name: str = "normal"
    feed_pages: int = 1
    buy_scale: float = 1.0
    stats_every_s: float | None = None

    def p_buy(self, kind: SessionKind) -> float:
        return P_BUY[kind] * self.buy_scale

    @property
    def conversion(self) -> float:
        """Orders per session on average: the factor from orders/s to sessions/s."""
        return sum(KIND_SHARES[k] * self.p_buy(k) for k in KIND_SHARES)

    @property
    def events_per_session(self) -> float:
        """Kafka records (impressions, clicks) and orders per session on average."""
        return KIND_SHARES["ad"] * (AD_SLOTS * self.feed_pages + P_CLICK) + self.conversion


NORMAL_DAY = DayShape()
# 20 pages x 2 ads: 40 impressions per ad visit, 0.15 clicks (a 0.4% click-through rate);
# about 3% of visits buy. With `--rate 2000 --unit events` that is ~1,400 impressions and
# clicks/s, ~650 content stats/s (240 creators), ~2.6 orders/s and ~34 auctions/s.
LARGE_DAY = DayShape(name="large", feed_pages=20, buy_scale=0.25, stats_every_s=1.0)
DAYS = {d.name: d for d in (NORMAL_DAY, LARGE_DAY)}

# Orders per session on average: the factor from an orders/s rate to a sessions/s rate.
CONVERSION = NORMAL_DAY.conversion
# Kafka records (impressions, clicks) and orders per session on average, for an events/s rate.
EVENTS_PER_SESSION = NORMAL_DAY.events_per_session
PLACEMENT_SHARES = {"feed": 0.6, "search": 0.25, "live": 0.15}
HOT_VIDEO_S = 300.0
DAY_S = 86_400.0


@dataclass(frozen=True)
class Video:
    content_id: str
    creator_index: int
    published_at: float
    product_key: str
    views: int
    likes: int
    comments: int
    shares: int
    # Views approach their total like 1 - e^(-t / rise_s).
    rise_s: float

    def counters(self, t: float) -> tuple[int, int, int, int]:
        """Cumulative (views, likes, comments, shares) at plan time t; never decreasing."""
        if t < self.published_at:
            return 0, 0, 0, 0
        progress = 1.0 - math.exp(-(t - self.published_at) / self.rise_s)
        return (
            round(self.views * progress),
            round(self.likes * progress),
            round(self.comments * progress),
            round(self.shares * progress),
        )


@dataclass(frozen=True)
class LiveShow:
    key: str
    creator_index: int
    title: str
    start: float
    end: float
    product_keys: tuple[str, ...]
    peak_viewers: int
    engagement_rate: float

    def stats(self, t: float) -> tuple[int, int, int, int, int]:
        """(current viewers, total views, likes, comments, shares) at plan time t."""
        length = max(1.0, self.end - self.start)
        x = clamp((t - self.start) / length, 0.0, 1.0)
        current = round(self.peak_viewers * math.pow(math.sin(math.pi * x), 0.6)) if x < 1 else 0
        total = round(self.peak_viewers * 4.0 * math.pow(x, 0.9))
        engaged = total * self.engagement_rate
        return current, total, round(engaged * 3.0), round(engaged), round(engaged * 0.2)

    def live_at(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True)
class OrderIntent:
    """What a buying buyer will do, decided up front."""

    product_key: str
    quantity: int
    # A second product of the same seller in the cart.
    extra_product_key: str | None
    # Seconds between seeing (or clicking) and ordering.
    think_s: float
    # Places the order and never pays: cancels it.
    abandon: bool
    # After a declined card: pay with another card (else cancel).
    retry_with_backup: bool
    ship_after_s: float
    deliver_after_s: float
    refund: RefundWhen
    partial_refund: bool
    refund_after_s: float
    # The seller ships only after the order's ship-by has passed (the late shipper's later
    # orders): the parcel is late however fast the carrier is.
    ship_late: bool = False


@dataclass(frozen=True)
class BuyerSession:
    at: float
    seq: int
    index: int
    buyer_index: int
    kind: SessionKind
    intent: OrderIntent | None
    creator_index: int | None = None
    video_id: str | None = None
    live_key: str | None = None
    placement: str = ""
    will_click: bool = False
    # Why this order was planted (None: an organic visit).
    planted: Planted | None = None


@dataclass(frozen=True)
class ContentReport:
    at: float
    seq: int
    content_id: str


@dataclass(frozen=True)
class LiveStart:
    at: float
    seq: int
    key: str


@dataclass(frozen=True)
class LiveTick:
    at: float
    seq: int
    key: str


@dataclass(frozen=True)
class LiveEnd:
    at: float
    seq: int
    key: str


@dataclass(frozen=True)
class StatsTick:
    """A large day's counter report: every hot video's stats at once."""

    at: float
    seq: int


@dataclass(frozen=True)
class ProfileUpdate:
    at: float
    seq: int
    creator_index: int
    followers: int
    # "growth" or "bought" (a fake-follower spike).
    reason: str


@dataclass(frozen=True)
class CounterfeitListing:
    at: float
    seq: int
    product_key: str


@dataclass(frozen=True)
class BotBurst:
    at: float
    seq: int
    bot_index: int
    span_s: float


Scheduled = (
    ContentReport
    | StatsTick
    | LiveStart
    | LiveTick
    | LiveEnd
    | ProfileUpdate
    | CounterfeitListing
    | BotBurst
)
Action = BuyerSession | Scheduled

VIDEO_REPORT_OFFSETS = (
    0.0,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    45.0,
    60.0,
    90.0,
    120.0,
    180.0,
    240.0,
    360.0,
    480.0,
    600.0,
)
# A large day: how long a video reports its counters after it was posted.
HOT_STATS_S = VIDEO_REPORT_OFFSETS[-1]
LIVE_TICK_S = 3.0
# The refund-heavy listing needs 10 orders and 30% refunds to be suppressed; plant a margin.
MIN_PLANTED_ORDERS = 14
# The late shipper: catalog judges a tier from 10 orders and delivery rates from 10 ended
# parcels. Its first LATE_SHIPPER_ON_TIME orders ship at once, so it is judged EXCELLENT; the
# next LATE_SHIPPER_LATE ship after their ship-by. 6 late of 16 is 37.5% of shipments and of
# parcels: past both POOR lines (20%), and already FAIR (10%) at the second late one.
LATE_SHIPPER_ON_TIME = 10
LATE_SHIPPER_LATE = 6
# The split cart: once a day, early enough to arrive before the run ends.
SPLIT_CART_AT = 0.2
# Visit numbers of the late shipper's orders and the split cart (organic visits count from 0).
PLANTED_INDEX = 900_000_000


class Plan:
    def __init__(
        self, world: World, duration_s: float, session_rate: float, day: DayShape = NORMAL_DAY
    ) -> None:
        self.world = world
        self.seed = world.seed
        self.duration_s = duration_s
        self.session_rate = session_rate
        self.day = day
        # The late shipper sells only through its planted orders: an organic refund or
        # cancellation would move its tier for another reason than lateness.
        late = world.late_shipper.seller_id
        self._products = [p for p in world.regular_products if p.seller_id != late]
        self._by_category: dict[str, Weighted[ProductSpec]] = {}
        for c in world.categories:
            listed = [p for p in self._products if p.category == c.category_id]
            if listed:
                self._by_category[c.category_id] = Weighted(listed, [p.popularity for p in listed])
        self._category_pick = Weighted(
            [c.category_id for c in world.categories if c.category_id in self._by_category],
            [c.popularity for c in world.categories if c.category_id in self._by_category],
        )
        promoted = sorted({k for c in world.campaigns for k in c.product_keys})
        self._promoted = (
            Weighted([world.product(k) for k in promoted], [1.0] * len(promoted))
            if promoted
            else None
        )
        self._buyer_pick = Weighted(
            list(range(len(world.buyers))), [b.activity for b in world.buyers]
        )
        self.baseline_videos = self._baseline_videos()
        self.videos = self._videos()
        self.lives = self._lives()
        self._published = [v.published_at for v in self.videos]
        self._baseline_pick = Weighted(
            list(self.baseline_videos), [max(1.0, float(v.views)) for v in self.baseline_videos]
        )
        self.videos_by_id = {v.content_id: v for v in (*self.baseline_videos, *self.videos)}
        self.lives_by_key = {live.key: live for live in self.lives}
        self.scheduled = self._scheduled()
        self.planted_orders = max(
            MIN_PLANTED_ORDERS, math.ceil(0.05 * session_rate * duration_s * day.conversion)
        )

    @classmethod
    def for_rate(
        cls,
        world: World,
        duration_s: float,
        rate: float,
        unit: Literal["orders", "events"],
        day: DayShape = NORMAL_DAY,
    ) -> Plan:
        """A plan whose sessions make `rate` orders/s, or `rate` Kafka records + orders per s."""
        if unit == "orders":
            return cls(world, duration_s, rate / day.conversion, day)
        background = cls(world, duration_s, 0.0, day).background_rate()
        return cls(world, duration_s, max(0.05, (rate - background) / day.events_per_session), day)

    def background_rate(self) -> float:
        """Social records per second that do not depend on buyers (stats, profiles)."""
        records = sum(
            len(self.hot_videos(a.at))
            if isinstance(a, StatsTick)
            else 1 + (1 if isinstance(a, LiveTick) else 0)
            for a in self.scheduled
            if isinstance(a, ContentReport | StatsTick | LiveTick | ProfileUpdate)
        )
        return records / self.duration_s if self.duration_s > 0 else 0.0

    def hot_videos(self, t: float) -> Sequence[Video]:
        """The videos a large day's StatsTick at plan time t reports: posted within HOT_STATS_S."""
        return self.videos[
            bisect.bisect_left(self._published, t - HOT_STATS_S) : bisect.bisect_right(
                self._published, t
            )
        ]

    @property
    def expected_orders(self) -> float:
        return (
            self.session_rate * self.duration_s * self.day.conversion
            + self.planted_orders
            + LATE_SHIPPER_ON_TIME
            + LATE_SHIPPER_LATE
            + 1  # the split cart
        )

    @property
    def expected_events(self) -> float:
        """Kafka records and orders the plan makes (as planned: every auction filling its slots)."""
        return (
            self.session_rate * self.duration_s * self.day.events_per_session
            + self.background_rate() * self.duration_s
        )

    def actions(self) -> Iterator[Action]:
        """Every action in time order, generated lazily."""
        return heapq.merge(self._sessions(), iter(self.scheduled), key=lambda a: (a.at, a.seq))

    # --- content ------------------------------------------------------------------------------

    def _featured(self, rng_label: object, creator: Creator) -> str:
        rng = sub_rng(self.seed, "featured", rng_label)
        listed = [p for p in self._products if p.category in creator.categories] or self._products
        # Affiliates favour listings that pay commission.
        pick = Weighted(listed, [p.popularity * (1.0 + p.commission_bps / 500) for p in listed])
        return pick.draw(rng).key

    def _video(
        self, content_id: str, index: int, creator: Creator, at: float, settled: bool
    ) -> Video:
        rng = sub_rng(self.seed, "video", content_id)
        views = max(10, round(creator.followers * creator.view_rate * rng.uniform(0.5, 1.5)))
        engaged = views * creator.engagement_rate * rng.uniform(0.7, 1.3)
        return Video(
            content_id=content_id,
            creator_index=index,
            published_at=at,
            product_key=self._featured(content_id, creator),
            views=views,
            likes=round(engaged * 0.8),
            comments=round(engaged * 0.12),
            shares=round(engaged * 0.08),
            rise_s=1.0 if settled else rng.uniform(60.0, 240.0),
        )

    def _baseline_videos(self) -> tuple[Video, ...]:
        """Each creator's last few videos before the run: the history their score starts from."""
        rng = sub_rng(self.seed, "baseline-videos")
        videos: list[Video] = []
        for i, creator in enumerate(self.world.creators):
            for j in range(3):
                at = -DAY_S * rng.uniform(0.3, 3.0)
                videos.append(self._video(f"{creator.creator_id}-v{j + 1}", i, creator, at, True))
        return tuple(videos)

    def _videos(self) -> tuple[Video, ...]:
        rng = sub_rng(self.seed, "videos")
        creators = self.world.creators
        # Every creator posts every few minutes of the compressed day; bigger ones a bit more.
        rate = len(creators) / 240.0
        pick = Weighted(
            list(range(len(creators))), [1.0 + math.log10(c.followers) for c in creators]
        )
        videos: list[Video] = []
        # A large day's feed was running before the traffic started: its hot videos too.
        start = -HOT_STATS_S if self.day.stats_every_s else 0.0
        t = start + rng.expovariate(rate) if rate > 0 else self.duration_s
        while t < self.duration_s:
            i = pick.draw(rng)
            videos.append(
                self._video(
                    f"{self.world.run_id}-vid-{len(videos) + 1:05d}", i, creators[i], t, False
                )
            )
            t += rng.expovariate(rate)
        return tuple(videos)

    def _lives(self) -> tuple[LiveShow, ...]:
        rng = sub_rng(self.seed, "lives")
        d = self.duration_s
        hosts = [i for i, c in enumerate(self.world.creators) if c.goes_live]
        count = min(len(hosts), int(clamp(round(d / 60.0 * 1.2), 1, 12)))
        chosen: list[int] = []
        weights = {i: float(self.world.creators[i].followers) for i in hosts}
        while len(chosen) < count:
            remaining = [i for i in hosts if i not in chosen]
            chosen.append(Weighted(remaining, [weights[i] for i in remaining]).draw(rng))
        lives = []
        for n, i in enumerate(chosen):
            creator = self.world.creators[i]
            start = rng.uniform(0.02, 0.6) * d
            length = max(min(30.0, d / 2), rng.uniform(0.25, 0.5) * d)
            listed = [
                p for p in self._products if p.category in creator.categories
            ] or self._products
            pins = Weighted(listed, [p.popularity * (1.0 + p.commission_bps / 500) for p in listed])
            keys: list[str] = []
            for _ in range(rng.randint(2, 4)):
                key = pins.draw(rng).key
                if key not in keys:
                    keys.append(key)
            lives.append(
                LiveShow(
                    key=f"L{n + 1:03d}",
                    creator_index=i,
                    title=f"{creator.display_name} live: {creator.categories[0]} deals",
                    start=start,
                    end=min(start + length, 0.98 * d),
                    product_keys=tuple(keys),
                    peak_viewers=max(20, round(creator.followers * rng.uniform(0.003, 0.02))),
                    engagement_rate=creator.engagement_rate,
                )
            )
        return tuple(sorted(lives, key=lambda live: live.start))

    # --- the fixed schedule ---------------------------------------------------------------------

    def _scheduled(self) -> list[Scheduled]:
        d = self.duration_s
        rng = sub_rng(self.seed, "schedule")
        items: list[Scheduled] = []
        seq = iter(range(1_000_000_000, 2_000_000_000))
        if self.day.stats_every_s:
            t = 0.0
            while t < d:
                items.append(StatsTick(t, next(seq)))
                t += self.day.stats_every_s
        else:
            for video in self.videos:
                for offset in VIDEO_REPORT_OFFSETS:
                    if video.published_at + offset < d:
                        items.append(
                            ContentReport(video.published_at + offset, next(seq), video.content_id)
                        )
        for live in self.lives:
            items.append(LiveStart(live.start, next(seq), live.key))
            t = live.start + LIVE_TICK_S
            while t < live.end:
                items.append(LiveTick(t, next(seq), live.key))
                t += LIVE_TICK_S
            items.append(LiveEnd(live.end, next(seq), live.key))
        fakes = 0
        for i, creator in enumerate(self.world.creators):
            if creator.fake:
                # Bought followers land in one go, then a second top-up later.
                spike = round(creator.followers * creator.spike_factor)
                items.append(ProfileUpdate(0.25 * d + fakes, next(seq), i, spike, "bought"))
                items.append(
                    ProfileUpdate(0.6 * d + fakes, next(seq), i, round(spike * 1.15), "bought")
                )
                fakes += 1
            else:
                grown = round(creator.followers * (1.0 + rng.uniform(0.0005, 0.01)))
                items.append(
                    ProfileUpdate(rng.uniform(0.3, 0.9) * d, next(seq), i, grown, "growth")
                )
        for n, product in enumerate(self.world.counterfeit_products):
            items.append(CounterfeitListing(0.08 * d + 1.5 * n, next(seq), product.key))
        for b in range(len(self.world.bots)):
            items.append(BotBurst(0.35 * d + 3.0 * b, next(seq), b, clamp(0.3 * d, 8.0, 40.0)))
        items.sort(key=lambda a: (a.at, a.seq))
        return items

    # --- buyers -----------------------------------------------------------------------------------

    def _planted_times(self) -> list[float]:
        """Orders of the refund-heavy listing, spread over the first half of the run."""
        rng = sub_rng(self.seed, "planted")
        n = self.planted_orders
        d = self.duration_s
        return sorted(d * (0.05 + 0.5 * (k + rng.random()) / n) for k in range(n))

    def _issue20_times(self) -> list[tuple[float, Planted]]:
        """The late shipper's orders over the first half of the run (its tier must be judged
        before the run ends), the split cart at SPLIT_CART_AT of it."""
        d = self.duration_s
        rng = sub_rng(self.seed, "planted-late")
        m = LATE_SHIPPER_ON_TIME + LATE_SHIPPER_LATE
        times: list[tuple[float, Planted]] = [
            (d * (0.05 + 0.45 * (k + rng.random()) / m), "late_shipper") for k in range(m)
        ]
        times.append((SPLIT_CART_AT * d, "split_cart"))
        return sorted(times)

    def _sessions(self) -> Iterator[BuyerSession]:
        organic = (
            (t, False)
            for t in bursty_arrivals(self.seed, "sessions", self.session_rate, self.duration_s)
        )
        planted = ((t, True) for t in self._planted_times())
        visits = (
            self._session(index, at, "refund_heavy" if is_planted else None)
            for index, (at, is_planted) in enumerate(heapq.merge(organic, planted))
        )
        # Numbered apart, so planting them renumbers no other visit: a seed's story is the
        # one it was before they existed.
        late_seen = 0
        extra: list[BuyerSession] = []
        for k, (at, why) in enumerate(self._issue20_times()):
            late_seen += why == "late_shipper"
            extra.append(self._session(PLANTED_INDEX + k, at, why, late_seen))
        return heapq.merge(visits, extra, key=lambda s: (s.at, s.seq))

    def _session(
        self, index: int, at: float, planted: Planted | None, late_seen: int = 0
    ) -> BuyerSession:
        rng = sub_rng(self.seed, "session", index)
        buyer = self._buyer_pick.draw(rng)
        if planted == "refund_heavy":
            hero = max(
                (
                    p
                    for p in self._products
                    if p.seller_id == self.world.refund_heavy_seller.seller_id
                ),
                key=lambda p: (p.popularity, p.key),
            )
            return BuyerSession(
                at,
                index,
                index,
                buyer,
                "search",
                self._intent(rng, hero, "search"),
                planted=planted,
            )
        if planted == "late_shipper":
            seller = self.world.late_shipper.seller_id
            listed = sorted(p.key for p in self.world.regular_products if p.seller_id == seller)
            order = _planted_intent(
                rng, rng.choice(listed), None, ship_late=late_seen > LATE_SHIPPER_ON_TIME
            )
            return BuyerSession(at, index, index, buyer, "search", order, planted=planted)
        if planted == "split_cart":
            east, west = self.world.split_pair
            order = _planted_intent(rng, east.key, west.key, ship_late=False)
            return BuyerSession(at, index, index, buyer, "search", order, planted=planted)
        kind = Weighted(list(KIND_SHARES), list(KIND_SHARES.values())).draw(rng)
        live = None
        if kind == "live":
            on_air = [s for s in self.lives if s.live_at(at)]
            if on_air:
                live = Weighted(on_air, [max(1, s.stats(at)[0]) for s in on_air]).draw(rng)
            else:
                kind = "video"
        if kind == "live" and live is not None:
            product = self.world.product(rng.choice(live.product_keys))
            intent = (
                self._intent(rng, product, kind) if rng.random() < self.day.p_buy("live") else None
            )
            return BuyerSession(
                at, index, index, buyer, kind, intent, live.creator_index, live_key=live.key
            )
        if kind == "video":
            video = self._pick_video(rng, at)
            product = self.world.product(video.product_key)
            intent = (
                self._intent(rng, product, kind) if rng.random() < self.day.p_buy("video") else None
            )
            return BuyerSession(
                at,
                index,
                index,
                buyer,
                kind,
                intent,
                video.creator_index,
                video_id=video.content_id,
            )
        product = self._by_category[self._category_pick.draw(rng)].draw(rng)
        if kind == "ad" and self._promoted is not None and rng.random() < 0.5:
            # Half the ad slots load next to an advertised product (relevance decides auctions).
            product = self._promoted.draw(rng)
        if kind == "ad":
            placement = Weighted(list(PLACEMENT_SHARES), list(PLACEMENT_SHARES.values())).draw(rng)
            will_click = rng.random() < P_CLICK
            buys = will_click and rng.random() < P_BUY_AFTER_CLICK * self.day.buy_scale
            # The product is a stand-in: the ad clicked decides what is bought (ads may be down).
            intent = self._intent(rng, product, kind) if buys else None
            return BuyerSession(
                at, index, index, buyer, kind, intent, placement=placement, will_click=will_click
            )
        intent = (
            self._intent(rng, product, kind) if rng.random() < self.day.p_buy("search") else None
        )
        return BuyerSession(at, index, index, buyer, "search", intent)

    def _pick_video(self, rng: random.Random, at: float) -> Video:
        # Videos are in publishing order: the hot ones are a slice.
        hot = self.videos[
            bisect.bisect_right(self._published, at - HOT_VIDEO_S) : bisect.bisect_right(
                self._published, at
            )
        ]
        if not hot:
            return self._baseline_pick.draw(rng)
        return Weighted(hot, [max(1.0, float(v.views)) for v in hot]).draw(rng)

    def _intent(self, rng: random.Random, product: ProductSpec, kind: SessionKind) -> OrderIntent:
        seller = self.world.seller(product.seller_id)
        quantity = 1 if (r := rng.random()) < 0.8 else 2 if r < 0.95 else 3
        extra = None
        if rng.random() < 0.12:
            others = [
                p
                for p in self._products
                if p.seller_id == seller.seller_id and p.key != product.key
            ]
            if others:
                extra = rng.choice(others).key
        refund: RefundWhen = "none"
        if rng.random() < seller.refund_rate:
            refund = "before_ship" if rng.random() < 0.25 else "after_delivery"
        return OrderIntent(
            product_key=product.key,
            quantity=quantity,
            extra_product_key=extra,
            # After an ad click a person reads the page first (ads flags impossibly fast orders).
            think_s=rng.uniform(5.0, 12.0) if kind == "ad" else rng.uniform(1.0, 6.0),
            abandon=rng.random() < 0.03,
            retry_with_backup=rng.random() < 0.6,
            ship_after_s=rng.uniform(1.0, 5.0),
            deliver_after_s=rng.uniform(2.0, 8.0),
            refund=refund,
            partial_refund=quantity > 1 and rng.random() < 0.5,
            refund_after_s=rng.uniform(1.0, 6.0),
        )


def _planted_intent(
    rng: random.Random, product_key: str, extra_key: str | None, *, ship_late: bool
) -> OrderIntent:
    """A planted order goes all the way: one unit of each listing, never abandoned, a declined
    card retried with the backup one, nothing refunded; a cancellation or a refund would move
    the seller's tier for another reason than the one planted."""
    return OrderIntent(
        product_key=product_key,
        quantity=1,
        extra_product_key=extra_key,
        think_s=rng.uniform(1.0, 6.0),
        abandon=False,
        retry_with_backup=True,
        ship_after_s=rng.uniform(1.0, 3.0),
        deliver_after_s=rng.uniform(2.0, 6.0),
        refund="none",
        partial_refund=False,
        refund_after_s=0.0,
        ship_late=ship_late,
    )
