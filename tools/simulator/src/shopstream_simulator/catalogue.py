"""What the simulated shops sell: per category a price level, the attributes catalog requires,
variants, and words for titles; plus words for seller, creator and agency names."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CategoryProfile:
    category_id: str
    # Typical price in minor units; listings scatter around it.
    base_price_minor: int
    # Share of shoppers' attention.
    popularity: float
    # Attributes catalog requires for the category, with plausible values.
    attributes: dict[str, tuple[str, ...]]
    nouns: tuple[str, ...]
    variant_name: str = ""
    variant_values: tuple[str, ...] = ()
    # Knock-offs of this category are common enough to plant counterfeits in it.
    counterfeit_prone: bool = False
    counterfeit_titles: tuple[str, ...] = field(default_factory=tuple)


CATEGORIES: tuple[CategoryProfile, ...] = (
    CategoryProfile(
        "beauty",
        2_400,
        0.24,
        {"volume_ml": ("15", "30", "50", "100", "200")},
        (
            "vitamin C serum",
            "lip tint",
            "gel cleanser",
            "SPF 50 sunscreen",
            "hair oil",
            "eyeshadow palette",
            "overnight mask",
            "brow gel",
        ),
        "shade",
        ("light", "medium", "tan", "deep"),
        counterfeit_prone=True,
        counterfeit_titles=("Luxury signature perfume 100ml", "Prestige night repair serum"),
    ),
    CategoryProfile(
        "fashion",
        3_500,
        0.22,
        {"material": ("cotton", "linen", "denim", "wool blend", "recycled polyester")},
        (
            "oversized tee",
            "cargo trousers",
            "knit cardigan",
            "slip dress",
            "puffer jacket",
            "bucket hat",
            "crossbody bag",
            "chunky trainers",
        ),
        "size",
        ("XS", "S", "M", "L", "XL"),
        counterfeit_prone=True,
        counterfeit_titles=("Monogram designer tote bag", "Luxury logo leather belt"),
    ),
    CategoryProfile(
        "home",
        2_900,
        0.14,
        {"material": ("ceramic", "bamboo", "stainless steel", "glass", "oak")},
        (
            "pour-over kettle",
            "storage jars",
            "bedside lamp",
            "throw blanket",
            "knife set",
            "linen napkins",
            "plant pot",
        ),
    ),
    CategoryProfile(
        "electronics",
        5_900,
        0.14,
        {"model": ("X1", "X2 Pro", "Air", "Mini", "Max"), "warranty_months": ("12", "24")},
        (
            "wireless earbuds",
            "phone tripod",
            "ring light",
            "power bank",
            "smartwatch",
            "mini projector",
            "mechanical keyboard",
        ),
        "colour",
        ("black", "white", "blue"),
        counterfeit_prone=True,
        counterfeit_titles=("Pro noise-cancelling earbuds gen 2", "Flagship smartwatch series 9"),
    ),
    CategoryProfile(
        "food",
        1_200,
        0.12,
        {"expiry_days": ("90", "180", "365"), "allergens": ("none", "nuts", "gluten", "milk")},
        (
            "matcha powder",
            "chilli crisp",
            "protein bars",
            "hot sauce trio",
            "granola",
            "cold brew concentrate",
        ),
    ),
    CategoryProfile(
        "toys",
        2_200,
        0.07,
        {"min_age": ("3", "6", "8", "12")},
        ("building set", "plush bear", "jigsaw puzzle", "RC car", "craft kit"),
    ),
    CategoryProfile(
        "sports",
        3_200,
        0.07,
        {},
        ("yoga mat", "resistance bands", "insulated bottle", "running belt", "grip socks"),
        "size",
        ("S", "M", "L"),
    ),
)

ADJECTIVES = (
    "Cloud",
    "Everyday",
    "Glow",
    "Urban",
    "Pure",
    "Bold",
    "Cosy",
    "Nova",
    "Studio",
    "Wild",
    "Soft",
    "Prime",
    "Velvet",
    "Coastal",
    "Retro",
    "Fresh",
)
SELLER_WORDS = (
    "Lumen",
    "Harbor",
    "Maple",
    "Kite",
    "Juniper",
    "Orbit",
    "Saffron",
    "Pebble",
    "Willow",
    "Cobalt",
    "Fable",
    "Meadow",
    "Quartz",
    "Ember",
    "Tidal",
    "Atlas",
    "Birch",
    "Clover",
)
SELLER_SUFFIXES = ("Co", "Studio", "Goods", "Supply", "House", "Labs", "Market", "Collective")
COUNTERFEIT_SELLERS = ("Best Deals Outlet", "Luxe For Less", "Brand Warehouse Direct")
COUNTERFEIT_BRANDS = ("Maison Luxe", "Prestige Paris", "Aurum Milano")
FIRST_NAMES = (
    "mia",
    "leo",
    "ava",
    "kai",
    "zoe",
    "sam",
    "noah",
    "ivy",
    "eli",
    "ruby",
    "finn",
    "isla",
    "omar",
    "lena",
    "theo",
    "nina",
    "jude",
    "maya",
    "ezra",
    "cleo",
    "amir",
    "rosa",
)
HANDLE_TOPICS = {
    "beauty": ("glow", "skin", "beauty", "makeup"),
    "fashion": ("style", "fits", "closet", "threads"),
    "home": ("home", "nest", "decor", "living"),
    "electronics": ("tech", "gadgets", "unboxed", "setup"),
    "food": ("eats", "kitchen", "bites", "cooks"),
    "toys": ("play", "toybox", "kids", "fun"),
    "sports": ("fit", "moves", "gym", "runs"),
}
MCN_NAMES = (
    "StarForge MCN",
    "Viral Harbor",
    "Bright Lane Talent",
    "Pulse Creators",
    "Neon Tide Media",
    "Summit Social",
    "Kindred Creators",
    "Orbit Agency",
)
