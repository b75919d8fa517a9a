"""Flash deals in live sessions (pure): their bounds (TikTok Shop's LIVE Flash Deal) and when
one is open."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shopstream_platform.errors import InvalidArgumentError

COUNTDOWN_S = (10, 300)
DURATION_S = (60, 1_200)


@dataclass(frozen=True)
class FlashSale:
    flash_sale_id: str
    live_session_id: str
    seller_id: str
    product_id: str
    sku_id: str
    deal_price_minor: int
    currency: str
    total: int
    sold: int
    per_buyer: int
    starts_at: datetime
    ends_at: datetime

    def open_at(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at


def check_terms(
    deal_price: int, list_price: int, total: int, per_buyer: int, countdown_s: int, duration_s: int
) -> None:
    """INVALID_ARGUMENT naming the first term out of bounds."""
    if not 0 < deal_price < list_price:
        raise InvalidArgumentError("deal_price", f"must be 1..{list_price - 1} (below the price)")
    if not 1 <= total <= 100_000:
        raise InvalidArgumentError("total_units", "must be 1..100000")
    if not 1 <= per_buyer <= total:
        raise InvalidArgumentError("per_buyer_limit", f"must be 1..{total}")
    if not COUNTDOWN_S[0] <= countdown_s <= COUNTDOWN_S[1]:
        raise InvalidArgumentError("countdown_s", f"must be {COUNTDOWN_S[0]}..{COUNTDOWN_S[1]}")
    if not DURATION_S[0] <= duration_s <= DURATION_S[1]:
        raise InvalidArgumentError("duration_s", f"must be {DURATION_S[0]}..{DURATION_S[1]}")
