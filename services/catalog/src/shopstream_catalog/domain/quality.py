"""Seller quality tiers and automatic listing suppression, from outcomes in the rolling window."""

from __future__ import annotations

from shopstream_catalog.domain.model import QualityStats, QualityTier, Reason
from shopstream_catalog.settings import QualityThresholds


def tier_for(stats: QualityStats, t: QualityThresholds) -> QualityTier:
    return assess(stats, t)[0]


def assess(stats: QualityStats, t: QualityThresholds) -> tuple[QualityTier, list[Reason]]:
    """The seller's tier and why: each rate at or past a FAIR or POOR threshold is a reason
    (delivery rates count once `min_packages_for_rates` packages ended their journey)."""
    if stats.orders < t.min_orders_for_tier:
        return QualityTier.NEW, [
            Reason(
                "TOO_FEW_ORDERS",
                f"{stats.orders} orders in the window; {t.min_orders_for_tier} needed",
            )
        ]
    rates = [
        ("HIGH_REFUND_RATE", "refunded", stats.refund_rate, t.fair_refund_rate, t.poor_refund_rate),
        (
            "HIGH_CANCELLATION_RATE",
            "cancelled",
            stats.cancellation_rate,
            t.fair_cancellation_rate,
            t.poor_cancellation_rate,
        ),
        (
            "LATE_SHIPMENTS",
            "shipped late",
            stats.late_shipment_rate,
            t.fair_late_shipment_rate,
            t.poor_late_shipment_rate,
        ),
    ]
    if stats.packages >= t.min_packages_for_rates:
        rates += [
            (
                "LATE_DELIVERIES",
                "parcels late",
                stats.late_delivery_rate,
                t.fair_late_delivery_rate,
                t.poor_late_delivery_rate,
            ),
            (
                "LOST_PARCELS",
                "parcels lost",
                stats.lost_parcel_rate,
                t.fair_lost_parcel_rate,
                t.poor_lost_parcel_rate,
            ),
        ]
    poor = [_reason(code, what, rate, p) for code, what, rate, _, p in rates if rate >= p]
    if poor:
        return QualityTier.POOR, poor
    fair = [_reason(code, what, rate, f) for code, what, rate, f, _ in rates if rate >= f]
    if fair:
        return QualityTier.FAIR, fair
    if max(rate for _, _, rate, _, _ in rates) <= t.excellent_max_rate:
        return QualityTier.EXCELLENT, []
    return QualityTier.GOOD, []


def _reason(code: str, what: str, rate: float, threshold: float) -> Reason:
    return Reason(code, f"{rate:.0%} {what} in the window; threshold {threshold:.0%}")


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
