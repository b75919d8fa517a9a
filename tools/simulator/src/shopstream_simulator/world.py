"""The simulated world, built from the seed alone: sellers and their listings, creators with
power-law audiences and agencies, buyers, ad campaigns, and the fraudsters hidden among them.

Pure: no I/O. The same seed and run id always build the same world; each part draws from its
own random stream, so resizing one part (more buyers) leaves the others unchanged.
"""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

from shopstream_simulator.catalogue import (
    ADJECTIVES,
    CATEGORIES,
    COUNTERFEIT_BRANDS,
    COUNTERFEIT_SELLERS,
    FIRST_NAMES,
    HANDLE_TOPICS,
    MCN_NAMES,
    SELLER_SUFFIXES,
    SELLER_WORDS,
    CategoryProfile,
)
from shopstream_simulator.distributions import Weighted, clamp, pareto_int, zipf_weights
from shopstream_simulator.ids import hex_token, sub_rng

SellerKind = Literal["regular", "refund_heavy", "counterfeit", "late_shipper"]
BidKind = Literal["CPC", "CPM"]
# How a seller's orders reach buyers (issue 20): shipped by the seller with their own carrier's
# tracking number (the buyer confirms delivery), shipped by the seller with a label from the
# platform's carrier (tracked to delivery by commerce), or fulfilled by the platform from its
# own warehouses (the seller sends stock in; the platform picks, packs, ships and charges fees).
Fulfilment = Literal["own_carrier", "sandbox_carrier", "platform"]

# Followers: P(X > x) = (2,000 / x) ** 1.2 — the 80/20 regime; a few stars hold most of the audience.
FOLLOWER_ALPHA = 1.2
FOLLOWER_MIN = 2_000
FOLLOWER_CAP = 30_000_000
# The median rule needs this many active listings per category (catalog: 5); plant a margin.
MIN_LISTINGS_PER_CATEGORY = 7
NORMAL_REFUND_RATE = 0.03
HEAVY_REFUND_RATE = 0.65
FAKE_SPIKE_FACTOR = 10.0
WAREHOUSES = ("wh-east", "wh-west")
PLACEMENTS = ("feed", "search", "live")
# Regular sellers' ways of shipping; every way gets at least one seller when there are three.
FULFILMENT_SHARES: dict[Fulfilment, float] = {
    "sandbox_carrier": 0.5,
    "own_carrier": 0.25,
    "platform": 0.25,
}
# A platform-fulfilled listing's stock sits in the east centre, the west one, or both; an order
# whose lines sit in different centres ships as two packages.
CENTRE_PLACEMENTS: tuple[tuple[tuple[int, ...], float], ...] = (
    ((0,), 0.35),
    ((1,), 0.25),
    ((0, 1), 0.40),
)


@dataclass(frozen=True)
class WorldSize:
    sellers: int = 24
    creators: int = 120
    buyers: int = 600
    mcns: int = 6
    counterfeit_sellers: int = 1
    counterfeit_listings: int = 3
    fake_follower_creators: int = 2
    bots: int = 2
    bot_clicks: int = 120
    advertiser_share: float = 0.5


@dataclass(frozen=True)
class Seller:
    seller_id: str
    display_name: str
    country: str
    kind: SellerKind
    categories: tuple[str, ...]
    # Share of this seller's orders their buyers send back.
    refund_rate: float
    advertiser: bool
    fulfilment: Fulfilment = "own_carrier"


@dataclass(frozen=True)
class SkuSpec:
    code: str
    variant: dict[str, str]
    price_minor: int
    stock: dict[str, int]


@dataclass(frozen=True)
class ProductSpec:
    # The simulator's own name for the listing; catalog assigns the product id.
    key: str
    seller_id: str
    category: str
    title: str
    description: str
    brand: str
    attributes: dict[str, str]
    skus: tuple[SkuSpec, ...]
    commission_bps: int
    # Relative demand among the category's listings.
    popularity: float
    counterfeit: bool = False

    @property
    def min_price_minor(self) -> int:
        return min(s.price_minor for s in self.skus)


@dataclass(frozen=True)
class Creator:
    creator_id: str
    display_name: str
    # At the start of the run; `followers_yesterday` is the day before (history for the score).
    followers: int
    followers_yesterday: int
    mcn: str
    categories: tuple[str, ...]
    country: str
    # Likes + comments + shares per view, and views of a video per follower.
    engagement_rate: float
    view_rate: float
    goes_live: bool
    # Bought followers: the count jumps by `spike_factor` during the run with no engagement.
    fake: bool = False
    spike_factor: float = 1.0


@dataclass(frozen=True)
class Buyer:
    buyer_id: str
    tracking_consent: bool
    # A per-install random id (no device advertising id exists in this model).
    install_id: str
    card_token: str
    backup_card_token: str
    activity: float
    # Where the buyer's parcels go (PlaceOrder's ship_to_region): catalog serves an order from a
    # warehouse of this region first.
    region: str = ""


@dataclass(frozen=True)
class FulfilmentCentre:
    """A platform warehouse of this run (RegisterWarehouse as admin)."""

    warehouse_id: str
    display_name: str
    region: str


@dataclass(frozen=True)
class CampaignSpec:
    key: str
    seller_id: str
    name: str
    product_keys: tuple[str, ...]
    creator_ids: tuple[str, ...]
    bid_type: BidKind
    bid_minor: int
    daily_budget_minor: int
    total_budget_minor: int
    placements: tuple[str, ...]


@dataclass(frozen=True)
class Bot:
    """A click-spam bot: one install, a handful of throwaway accounts, a burst of clicks."""

    install_id: str
    buyer_ids: tuple[str, ...]
    clicks: int


@dataclass(frozen=True)
class World:
    seed: int
    run_id: str
    currency: str
    country: str
    categories: tuple[CategoryProfile, ...]
    sellers: tuple[Seller, ...]
    products: tuple[ProductSpec, ...]
    creators: tuple[Creator, ...]
    buyers: tuple[Buyer, ...]
    campaigns: tuple[CampaignSpec, ...]
    bots: tuple[Bot, ...]
    mcns: tuple[str, ...]
    fulfilment_centres: tuple[FulfilmentCentre, ...] = ()

    def product(self, key: str) -> ProductSpec:
        return self._products_by_key()[key]

    def _products_by_key(self) -> dict[str, ProductSpec]:
        cached: dict[str, ProductSpec] | None = self.__dict__.get("_by_key")
        if cached is None:
            cached = {p.key: p for p in self.products}
            object.__setattr__(self, "_by_key", cached)
        return cached

    def seller(self, seller_id: str) -> Seller:
        return next(s for s in self.sellers if s.seller_id == seller_id)

    @property
    def regular_products(self) -> tuple[ProductSpec, ...]:
        return tuple(p for p in self.products if not p.counterfeit)

    @property
    def counterfeit_products(self) -> tuple[ProductSpec, ...]:
        return tuple(p for p in self.products if p.counterfeit)

    def fulfilled_by_platform(self, seller_id: str) -> bool:
        return self.seller(seller_id).fulfilment == "platform"

    @property
    def refund_heavy_seller(self) -> Seller:
        return next(s for s in self.sellers if s.kind == "refund_heavy")

    @property
    def late_shipper(self) -> Seller:
        return next(s for s in self.sellers if s.kind == "late_shipper")

    @property
    def split_pair(self) -> tuple[ProductSpec, ProductSpec]:
        """Two listings of one platform-fulfilled seller, one stocked only in the first centre
        and one only in the second: a cart of both cannot be served by one warehouse, so
        catalog splits it (build_world makes sure such a pair exists)."""
        pair = _split_pair(self.products, self.sellers, self.fulfilment_centres)
        if pair is None:
            raise LookupError("no platform seller keeps listings in different centres only")
        return pair

    @property
    def fake_creators(self) -> tuple[Creator, ...]:
        return tuple(c for c in self.creators if c.fake)

    def category_median(self, category: str) -> float:
        """Median cheapest-SKU price of the category's honest listings (what catalog compares)."""
        prices = [p.min_price_minor for p in self.regular_products if p.category == category]
        return float(statistics.median(prices)) if prices else 0.0


def build_world(seed: int, run_id: str, size: WorldSize, currency: str, country: str) -> World:
    categories = CATEGORIES
    # Each step below draws from its own stream: how sellers ship, where platform stock sits
    # and where buyers live leave the rest of the world as it was before they existed.
    sellers = _ways_of_shipping(seed, _sellers(seed, run_id, size, country, categories))
    centres = _centres(run_id, country)
    products = _in_centres(seed, _products(seed, sellers, categories), sellers, centres)
    products += _counterfeits(seed, sellers, products, size, categories)
    # The late shipper comes last, from streams of its own: the rest of the world is the same
    # as before it existed.
    late = _late_shipper(seed, run_id, country, categories, sellers)
    sellers += (late,)
    products += _late_shipper_listings(seed, late, categories)
    mcns = MCN_NAMES[: max(1, min(size.mcns, len(MCN_NAMES)))]
    creators = _creators(seed, run_id, size, country, categories, mcns)
    return World(
        seed=seed,
        run_id=run_id,
        currency=currency,
        country=country,
        categories=categories,
        sellers=sellers,
        products=products,
        creators=creators,
        buyers=_regions(seed, _buyers(seed, run_id, size), centres),
        campaigns=_campaigns(seed, sellers, products, creators),
        bots=_bots(seed, run_id, size),
        mcns=mcns,
        fulfilment_centres=centres,
    )


# --- sellers and listings ---------------------------------------------------------------------


def _sellers(
    seed: int,
    run_id: str,
    size: WorldSize,
    country: str,
    categories: tuple[CategoryProfile, ...],
) -> tuple[Seller, ...]:
    rng = sub_rng(seed, "sellers")
    by_popularity = sorted(categories, key=lambda c: -c.popularity)
    names: set[str] = set()
    sellers: list[Seller] = []
    regular = max(size.sellers, len(categories))
    advertisers = set(
        rng.sample(range(regular), max(min(3, regular), round(size.advertiser_share * regular)))
    )
    for i in range(regular):
        # Round-robin primary categories so every category has shops; some sell a second one.
        primary = by_popularity[i % len(by_popularity)].category_id
        cats = [primary]
        if rng.random() < 0.3:
            second = rng.choice([c.category_id for c in categories if c.category_id != primary])
            cats.append(second)
        name = _unique(names, lambda: f"{rng.choice(SELLER_WORDS)} {rng.choice(SELLER_SUFFIXES)}")
        sellers.append(
            Seller(
                f"{run_id}-seller-{i + 1:03d}",
                name,
                country,
                "regular",
                tuple(cats),
                NORMAL_REFUND_RATE * rng.uniform(0.3, 1.5),
                i in advertisers,
            )
        )
    sellers.append(
        Seller(
            f"{run_id}-seller-refunds",
            _unique(
                names, lambda: f"{rng.choice(SELLER_WORDS)} Gadget {rng.choice(SELLER_SUFFIXES)}"
            ),
            country,
            "refund_heavy",
            ("electronics",),
            HEAVY_REFUND_RATE,
            False,
        )
    )
    for j in range(max(0, size.counterfeit_sellers)):
        sellers.append(
            Seller(
                f"{run_id}-seller-bargain-{j + 1}",
                COUNTERFEIT_SELLERS[j % len(COUNTERFEIT_SELLERS)],
                country,
                "counterfeit",
                tuple(c.category_id for c in categories if c.counterfeit_prone),
                NORMAL_REFUND_RATE,
                False,
            )
        )
    return tuple(sellers)


def _ways_of_shipping(seed: int, sellers: tuple[Seller, ...]) -> tuple[Seller, ...]:
    """Regular sellers ship in one of FULFILMENT_SHARES' ways (each way at least once when there
    are three regular sellers); the refund-heavy seller ships with its own carrier as before and
    the bargain shop labels its parcels with the platform's carrier."""
    rng = sub_rng(seed, "fulfilment")
    pick = Weighted(list(FULFILMENT_SHARES), list(FULFILMENT_SHARES.values()))
    regular = [i for i, s in enumerate(sellers) if s.kind == "regular"]
    ways: dict[int, Fulfilment] = {i: pick.draw(rng) for i in regular}
    if len(regular) >= len(FULFILMENT_SHARES):
        for way in FULFILMENT_SHARES:
            if way not in ways.values():
                # A seller of the most common way takes it (that way keeps at least one).
                counts = Counter(ways.values())
                ways[max(regular, key=lambda i: (counts[ways[i]], i))] = way
    for i, seller in enumerate(sellers):
        if i not in ways:
            ways[i] = "own_carrier" if seller.kind == "refund_heavy" else "sandbox_carrier"
    return tuple(replace(seller, fulfilment=ways[i]) for i, seller in enumerate(sellers))


def _centres(run_id: str, country: str) -> tuple[FulfilmentCentre, ...]:
    return tuple(
        FulfilmentCentre(
            f"{run_id}-fc-{side}", f"Fulfilment centre {side}", f"{country}-{side.upper()}"
        )
        for side in ("east", "west")
    )


def _in_centres(
    seed: int,
    products: tuple[ProductSpec, ...],
    sellers: tuple[Seller, ...],
    centres: tuple[FulfilmentCentre, ...],
) -> tuple[ProductSpec, ...]:
    """A platform-fulfilled seller's stock sits in the platform's centres (sent in as inbound
    shipments at set-up), not in the seller's own warehouses."""
    rng = sub_rng(seed, "centre-stock")
    platform = {s.seller_id for s in sellers if s.fulfilment == "platform"}
    placements = Weighted([p for p, _ in CENTRE_PLACEMENTS], [w for _, w in CENTRE_PLACEMENTS])
    out = []
    for product in products:
        if product.seller_id not in platform:
            out.append(product)
            continue
        where = [centres[i].warehouse_id for i in placements.draw(rng)]
        skus = tuple(
            replace(sku, stock={w: rng.randint(150, 600) for w in where}) for sku in product.skus
        )
        out.append(replace(product, skus=skus))
    return _with_split_pair(tuple(out), sellers, centres)


def _split_pair(
    products: tuple[ProductSpec, ...],
    sellers: tuple[Seller, ...],
    centres: tuple[FulfilmentCentre, ...],
) -> tuple[ProductSpec, ProductSpec] | None:
    """The first platform seller's (by id) first listing stocked only in the first centre and
    first stocked only in the second, if it has both."""
    if len(centres) < 2:
        return None
    only = [frozenset({c.warehouse_id}) for c in centres[:2]]
    for seller in sorted(sellers, key=lambda s: s.seller_id):
        if seller.fulfilment != "platform":
            continue
        own = [p for p in products if p.seller_id == seller.seller_id and not p.counterfeit]
        sides = [
            next((p for p in own if all(frozenset(k.stock) == side for k in p.skus)), None)
            for side in only
        ]
        if sides[0] is not None and sides[1] is not None:
            return sides[0], sides[1]
    return None


def _with_split_pair(
    products: tuple[ProductSpec, ...],
    sellers: tuple[Seller, ...],
    centres: tuple[FulfilmentCentre, ...],
) -> tuple[ProductSpec, ...]:
    """Catalog splits an order only when no warehouse can serve all of it, so a planted split
    cart needs a platform seller with a listing in each centre alone. When the draw left none,
    the first platform seller with two listings has its first moved to the first centre and
    its second to the second (same units, so inbound totals keep their scale)."""
    if len(centres) < 2 or _split_pair(products, sellers, centres) is not None:
        return products
    platform = sorted(s.seller_id for s in sellers if s.fulfilment == "platform")
    for seller_id in platform:
        own = [i for i, p in enumerate(products) if p.seller_id == seller_id]
        if len(own) < 2:
            continue
        out = list(products)
        for index, centre in zip(own[:2], centres[:2], strict=True):
            product = out[index]
            skus = tuple(
                replace(sku, stock={centre.warehouse_id: sum(sku.stock.values())})
                for sku in product.skus
            )
            out[index] = replace(product, skus=skus)
        return tuple(out)
    return products


def _regions(
    seed: int, buyers: tuple[Buyer, ...], centres: tuple[FulfilmentCentre, ...]
) -> tuple[Buyer, ...]:
    """Buyers live near one centre or the other (a little more in the east)."""
    rng = sub_rng(seed, "regions")
    regions = Weighted([c.region for c in centres], [0.55, 0.45][: len(centres)])
    return tuple(replace(b, region=regions.draw(rng)) for b in buyers)


def _late_shipper(
    seed: int,
    run_id: str,
    country: str,
    categories: tuple[CategoryProfile, ...],
    sellers: tuple[Seller, ...],
) -> Seller:
    """A seller who ships with their own carrier, promptly at first and then after the orders'
    ship-by (plan.py plants its orders; only planted buyers order from it, so its tier comes from
    those alone). Refunds none, so lateness is the only reason its tier moves."""
    rng = sub_rng(seed, "late-shipper")
    taken = {s.display_name for s in sellers}
    name = _unique(taken, lambda: f"{rng.choice(SELLER_WORDS)} Home {rng.choice(SELLER_SUFFIXES)}")
    category = rng.choice([c.category_id for c in categories if not c.counterfeit_prone])
    return Seller(
        f"{run_id}-seller-late",
        name,
        country,
        "late_shipper",
        (category,),
        0.0,
        False,
        "own_carrier",
    )


def _late_shipper_listings(
    seed: int, seller: Seller, categories: tuple[CategoryProfile, ...]
) -> tuple[ProductSpec, ...]:
    rng = sub_rng(seed, "late-shipper-listings")
    profile = next(c for c in categories if c.category_id == seller.categories[0])
    # Priced near the category's level: catalog's median rule must not hold them for review.
    return tuple(
        _listing(
            rng,
            f"D{n + 1:03d}",
            seller,
            profile,
            clamp(rng.lognormvariate(0.0, 0.2), 0.8, 1.3),
            0,
            1.0,
        )
        for n in range(2)
    )


def _shelf_price(value: float) -> int:
    """Prices end in 99 (rounded up), like shelf prices."""
    return max(99, int(value) // 100 * 100 + 99)


def _listing(
    rng: random.Random,
    key: str,
    seller: Seller,
    profile: CategoryProfile,
    price_factor: float,
    commission_bps: int,
    popularity: float,
) -> ProductSpec:
    noun = rng.choice(profile.nouns)
    brand = seller.display_name.split()[0]
    title = f"{rng.choice(ADJECTIVES)} {noun}"
    attributes = {name: rng.choice(values) for name, values in profile.attributes.items()}
    price = _shelf_price(profile.base_price_minor * price_factor)
    variants = (
        rng.sample(profile.variant_values, rng.randint(1, min(3, len(profile.variant_values))))
        if profile.variant_values
        else [""]
    )
    skus = tuple(
        SkuSpec(
            code=f"{key.lower()}-{i + 1}",
            variant={profile.variant_name: v} if v else {},
            price_minor=price,
            stock={w: rng.randint(150, 600) for w in WAREHOUSES[: rng.randint(1, len(WAREHOUSES))]},
        )
        for i, v in enumerate(variants)
    )
    return ProductSpec(
        key=key,
        seller_id=seller.seller_id,
        category=profile.category_id,
        title=title,
        description=f"{title} by {brand}. {noun.capitalize()} our customers come back for.",
        brand=brand,
        attributes=attributes,
        skus=skus,
        commission_bps=commission_bps,
        popularity=popularity,
    )


def _products(
    seed: int, sellers: tuple[Seller, ...], categories: tuple[CategoryProfile, ...]
) -> tuple[ProductSpec, ...]:
    rng = sub_rng(seed, "products")
    profiles = {c.category_id: c for c in categories}
    products: list[ProductSpec] = []

    def add(seller: Seller, category: str, refund_heavy: bool = False) -> None:
        key = f"P{len(products) + 1:04d}"
        factor = clamp(rng.lognormvariate(0.0, 0.35), 0.55, 2.4)
        commission = rng.choice((0, 500, 800, 1000, 1200, 1500, 2000))
        popularity = rng.paretovariate(1.5) * (3.0 if refund_heavy else 1.0)
        products.append(
            _listing(rng, key, seller, profiles[category], factor, commission, popularity)
        )

    for seller in sellers:
        if seller.kind == "regular":
            for _ in range(rng.randint(3, 7)):
                add(seller, rng.choice(seller.categories))
        elif seller.kind == "refund_heavy":
            for _ in range(2):
                add(seller, seller.categories[0], refund_heavy=True)
        else:
            # A counterfeit shop keeps one honest-looking listing to look like a real shop.
            add(seller, seller.categories[0])
    regular = [s for s in sellers if s.kind == "regular"]
    for profile in categories:
        shops = [s for s in regular if profile.category_id in s.categories] or regular
        while (
            sum(1 for p in products if p.category == profile.category_id)
            < MIN_LISTINGS_PER_CATEGORY
        ):
            add(rng.choice(shops), profile.category_id)
    return tuple(products)


def _counterfeits(
    seed: int,
    sellers: tuple[Seller, ...],
    products: tuple[ProductSpec, ...],
    size: WorldSize,
    categories: tuple[CategoryProfile, ...],
) -> tuple[ProductSpec, ...]:
    rng = sub_rng(seed, "counterfeits")
    shops = [s for s in sellers if s.kind == "counterfeit"]
    prone = [c for c in categories if c.counterfeit_prone]
    if not shops or not prone:
        return ()
    planted: list[ProductSpec] = []
    for i in range(max(0, size.counterfeit_listings)):
        shop = shops[i % len(shops)]
        profile = prone[i % len(prone)]
        honest = [p.min_price_minor for p in products if p.category == profile.category_id]
        median = statistics.median(honest)
        # 10-18% of the category median: far under catalog's 30% line, as knock-offs are priced.
        price = max(99, int(median * rng.uniform(0.10, 0.18)) // 100 * 100 - 1)
        key = f"C{i + 1:03d}"
        brand = COUNTERFEIT_BRANDS[i % len(COUNTERFEIT_BRANDS)]
        title = profile.counterfeit_titles[i % len(profile.counterfeit_titles)]
        variant = (
            {profile.variant_name: profile.variant_values[0]} if profile.variant_values else {}
        )
        planted.append(
            ProductSpec(
                key=key,
                seller_id=shop.seller_id,
                category=profile.category_id,
                title=title,
                description=f"{title}. Original quality, authentic look, ships fast.",
                brand=brand,
                attributes={n: v[0] for n, v in profile.attributes.items()},
                skus=(SkuSpec(f"{key.lower()}-1", variant, price, {WAREHOUSES[0]: 999}),),
                commission_bps=0,
                popularity=1.0,
                counterfeit=True,
            )
        )
    return tuple(planted)


# --- creators and audiences -------------------------------------------------------------------


def _creators(
    seed: int,
    run_id: str,
    size: WorldSize,
    country: str,
    categories: tuple[CategoryProfile, ...],
    mcns: tuple[str, ...],
) -> tuple[Creator, ...]:
    rng = sub_rng(seed, "creators")
    n = max(size.creators, size.fake_follower_creators + 1)
    category_pick = Weighted(
        [c.category_id for c in categories], [c.popularity for c in categories]
    )
    agency_pick = Weighted(list(mcns), zipf_weights(len(mcns), 1.0))
    handles: set[str] = set()
    followers = [pareto_int(rng, FOLLOWER_ALPHA, FOLLOWER_MIN, FOLLOWER_CAP) for _ in range(n)]
    # The fakes hide among the small accounts (the ones that buy followers).
    small = sorted(range(n), key=lambda i: followers[i])[: max(1, n // 2)]
    fakes = set(rng.sample(small, min(len(small), max(0, size.fake_follower_creators))))
    creators: list[Creator] = []
    for i in range(n):
        main = category_pick.draw(rng)
        cats = [main]
        if rng.random() < 0.35:
            other = category_pick.draw(rng)
            if other != main:
                cats.append(other)
        fake = i in fakes
        count = rng.randint(3_000, 8_000) if fake else followers[i]
        # Agencies sign the big accounts: chance grows with log followers.
        p_agency = clamp(0.15 + 0.12 * math.log10(count / FOLLOWER_MIN + 1.0), 0.0, 0.9)
        mcn = agency_pick.draw(rng) if rng.random() < p_agency else ""
        topic = rng.choice(HANDLE_TOPICS[main])
        handle = _unique(handles, _handle_maker(rng, topic))
        # Bigger audiences engage less per view (a known law of social media).
        engagement = clamp(
            0.09 * math.pow(count / 10_000, -0.15) * rng.uniform(0.6, 1.4), 0.01, 0.15
        )
        growth = rng.uniform(0.002, 0.02)
        creators.append(
            Creator(
                creator_id=f"{run_id}-cr-{i + 1:04d}",
                display_name=handle,
                followers=count,
                followers_yesterday=max(1, round(count / (1.0 + growth))),
                mcn=mcn,
                categories=tuple(cats),
                country=country,
                engagement_rate=0.002 if fake else engagement,
                view_rate=0.01 if fake else rng.uniform(0.08, 0.5),
                goes_live=not fake and rng.random() < (0.6 if count >= 50_000 else 0.25),
                fake=fake,
                spike_factor=FAKE_SPIKE_FACTOR if fake else 1.0,
            )
        )
    return tuple(creators)


def _buyers(seed: int, run_id: str, size: WorldSize) -> tuple[Buyer, ...]:
    rng = sub_rng(seed, "buyers")
    n = max(1, size.buyers)
    activity = zipf_weights(n, 0.6)
    rng.shuffle(activity)
    buyers = []
    for i in range(n):
        roll = rng.random()
        card = (
            f"tok_decline_{i}"
            if roll < 0.02
            else f"tok_insufficient_{i}"
            if roll < 0.03
            else f"tok_visa_{i}"
        )
        buyers.append(
            Buyer(
                buyer_id=f"{run_id}-buyer-{i + 1:05d}",
                # About a third of app users decline cross-app tracking (ATT).
                tracking_consent=rng.random() < 0.65,
                install_id=f"inst-{hex_token(rng, 6)}",
                card_token=card,
                backup_card_token=f"tok_mastercard_{i}",
                activity=activity[i],
            )
        )
    return tuple(buyers)


def _campaigns(
    seed: int,
    sellers: tuple[Seller, ...],
    products: tuple[ProductSpec, ...],
    creators: tuple[Creator, ...],
) -> tuple[CampaignSpec, ...]:
    rng = sub_rng(seed, "campaigns")
    campaigns: list[CampaignSpec] = []
    for seller in sellers:
        if not seller.advertiser:
            continue
        own = sorted(
            (p for p in products if p.seller_id == seller.seller_id and not p.counterfeit),
            key=lambda p: -p.popularity,
        )
        if not own:
            continue
        promoted = own[: rng.randint(1, min(3, len(own)))]
        partners = [
            c.creator_id
            for c in creators
            if not c.fake and promoted[0].category in c.categories and c.followers >= 20_000
        ]
        creator_ids = (rng.choice(partners),) if partners and rng.random() < 0.3 else ()
        cpc = rng.random() < 0.7
        daily = rng.randint(20, 80) * 1_000
        campaigns.append(
            CampaignSpec(
                key=f"K{len(campaigns) + 1:03d}",
                seller_id=seller.seller_id,
                name=f"{seller.display_name} — {promoted[0].title}",
                product_keys=tuple(p.key for p in promoted),
                creator_ids=creator_ids,
                bid_type="CPC" if cpc else "CPM",
                bid_minor=rng.randint(20, 120) if cpc else rng.randint(400, 2_500),
                daily_budget_minor=daily,
                total_budget_minor=daily * 4,
                placements=()
                if rng.random() < 0.5
                else tuple(sorted(rng.sample(PLACEMENTS, rng.randint(1, 2)))),
            )
        )
    return tuple(campaigns)


def _bots(seed: int, run_id: str, size: WorldSize) -> tuple[Bot, ...]:
    rng = sub_rng(seed, "bots")
    return tuple(
        Bot(
            install_id=f"inst-{hex_token(rng, 6)}",
            # Rotating accounts keep each under the per-buyer limit; the install gives them away.
            buyer_ids=tuple(f"{run_id}-bot{b + 1}-acct{j + 1}" for j in range(8)),
            clicks=max(1, size.bot_clicks) + rng.randint(0, 40),
        )
        for b in range(max(0, size.bots))
    )


def _handle_maker(rng: random.Random, topic: str) -> Callable[[], str]:
    return lambda: f"{rng.choice(FIRST_NAMES)}.{topic}{rng.randint(1, 99)}"


def _unique(taken: set[str], make: Callable[[], str]) -> str:
    for _ in range(1_000):
        candidate = str(make())
        if candidate not in taken:
            taken.add(candidate)
            return candidate
    raise RuntimeError("ran out of names")
