"""Seller quality tiers and automatic listing suppression, from outcomes in the rolling window."""

from __future__ import annotations

from shopstream_catalog.domain.model import QualityStats, QualityTier, Reason
from shopstream_catalog.settings import QualityThresholds


def tier_for(stats: QualityStats, t: QualityThresholds) -> QualityTier:
    if stats.orders < t.min_orders_for_tier:
        return QualityTier.NEW
    refund, cancel, late = stats.refund_rate, stats.cancellation_rate, stats.late_shipment_rate
    if (
        refund >= t.poor_refund_rate
        or cancel >= t.poor_cancellation_rate
        or late >= t.poor_late_shipment_rate
    ):
        return QualityTier.POOR
    if (
        refund >= t.fair_refund_rate
        or cancel >= t.fair_cancellation_rate
        or late >= t.fair_late_shipment_rate
    ):
        return QualityTier.FAIR
    if max(refund, cancel, late) <= t.excellent_max_rate:
        return QualityTier.EXCELLENT
    return QualityTier.GOOD


def suppression_reason(orders: int, refunded: int, t: QualityThresholds) -> Reason | None:
    """A reason to suppress a listing with these outcomes in the window, or None to keep it."""
    if orders < t.suppress_min_orders:
        return None
    rate = refunded / orders
    if rate < t.suppress_refund_rate:
        return None
    return Reason(
        "HIGH_REFUND_RATE",
        f"{refunded} of {orders} orders refunded ({rate:.0%}) in the window; "
        f"threshold {t.suppress_refund_rate:.0%}",
    )
