"""Money arithmetic on integer minor units: commissions, refunds and GPM round down, never float."""

from __future__ import annotations

BPS = 10_000


def commission(amount_minor: int, rate_bps: int) -> int:
    """Commission on an amount at a rate in basis points, rounded down (toward zero)."""
    return (
        amount_minor * rate_bps // BPS
        if amount_minor >= 0
        else -((-amount_minor) * rate_bps // BPS)
    )


def prorated(total_minor: int, part: int, whole: int) -> int:
    """The share of `total_minor` for `part` of `whole` units (refund of some units of a line)."""
    if whole <= 0:
        return 0
    return total_minor * part // whole


def gpm(gmv_minor: int, views: int) -> int:
    """GMV per 1,000 views in minor units; 0 without views."""
    return gmv_minor * 1_000 // views if views > 0 else 0
