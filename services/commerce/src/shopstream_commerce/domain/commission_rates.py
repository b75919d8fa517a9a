"""Which commission rate applies to an order line (TikTok Shop's affiliate rules, pure).

- A product has an open rate (any creator, or only those the seller approved when it requires
  approval), targeted rates (named creators; each overrides the open rate for that creator
  only) and a Shop Ads rate (lines sold through an ad click).
- A change applies to orders placed from its `effective_from` (now for every change since
  targeted rates; before them a cut started 30 days later for everyone, and such stored
  changes still count from their date).
- A cut does not reach creators who promoted the product within the lock period: each gets a
  lock keeping the rate they had until the lock ends (a later raise above it still counts).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class RateChange:
    rate_bps: int
    set_at: datetime
    effective_from: datetime
    creator_id: str = ""  # targeted: this creator only; "" the open rate
    shop_ads: bool = False
    # Open rate: only creators the seller approved earn it.
    require_approval: bool = False


@dataclass(frozen=True)
class RateLock:
    creator_id: str
    rate_bps: int
    until: datetime


def _latest(changes: Iterable[RateChange], at: datetime) -> RateChange | None:
    """The latest change already effective at `at` (ties: the one set last)."""
    effective = [c for c in changes if c.effective_from <= at]
    return max(effective, key=lambda c: (c.effective_from, c.set_at)) if effective else None


def affiliate_rate(
    changes: list[RateChange],
    at: datetime,
    default_bps: int,
    creator_id: str = "",
    approved: bool = True,
) -> int:
    """The creator's targeted rate if any, else the open rate (0 when it requires approval and
    the creator is not `approved`), else the default (no lock)."""
    affiliate = [c for c in changes if not c.shop_ads]
    if creator_id:
        targeted = _latest((c for c in affiliate if c.creator_id == creator_id), at)
        if targeted is not None:
            return targeted.rate_bps
    open_rate = _latest((c for c in affiliate if not c.creator_id), at)
    if open_rate is None:
        return default_bps
    return 0 if open_rate.require_approval and not approved else open_rate.rate_bps


def shop_ads_rate(changes: list[RateChange], at: datetime) -> int | None:
    found = _latest((c for c in changes if c.shop_ads), at)
    return None if found is None else found.rate_bps


def rate_for(
    changes: list[RateChange],
    placed_at: datetime,
    default_bps: int,
    creator_id: str = "",
    *,
    via_ad: bool = False,
    locks: Iterable[RateLock] = (),
    approved: bool = True,
) -> int:
    """The rate fixed on a line placed at `placed_at` for `creator_id` (`via_ad`: the line
    carries an ad click id and the product has a Shop Ads rate)."""
    if via_ad and (ads := shop_ads_rate(changes, placed_at)) is not None:
        return ads
    rate = affiliate_rate(changes, placed_at, default_bps, creator_id, approved)
    held = [k.rate_bps for k in locks if k.creator_id == creator_id and k.until > placed_at]
    return max([rate, *held])


def current_rate(changes: list[RateChange], now: datetime, default_bps: int) -> int:
    """The open rate now (kept for callers that have no creator)."""
    return affiliate_rate(changes, now, default_bps)


def scope_rate(
    changes: list[RateChange], now: datetime, default_bps: int, creator_id: str, shop_ads: bool
) -> int:
    """What the scope a new change is set for had until now: Shop Ads falls back to the open
    rate, a targeted rate to the open rate."""
    if shop_ads:
        ads = shop_ads_rate(changes, now)
        return affiliate_rate(changes, now, default_bps) if ads is None else ads
    return affiliate_rate(changes, now, default_bps, creator_id)
