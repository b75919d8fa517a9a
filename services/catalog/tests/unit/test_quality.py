from shopstream_catalog.domain.model import QualityStats, QualityTier
from shopstream_catalog.domain.quality import suppression_reason, tier_for
from shopstream_catalog.settings import QualityThresholds

T = QualityThresholds()


def stats(
    orders: int, refunded: int = 0, cancelled: int = 0, shipped: int = 0, late: int = 0
) -> QualityStats:
    return QualityStats(
        orders=orders, refunded=refunded, cancelled=cancelled, shipped=shipped, shipped_late=late
    )


def test_tiers() -> None:
    assert tier_for(stats(5), T) == QualityTier.NEW
    assert tier_for(stats(100, shipped=100), T) == QualityTier.EXCELLENT
    assert tier_for(stats(100, refunded=5, shipped=100), T) == QualityTier.GOOD
    assert tier_for(stats(100, refunded=10, shipped=100), T) == QualityTier.FAIR
    assert tier_for(stats(100, refunded=20, shipped=100), T) == QualityTier.POOR
    assert tier_for(stats(100, shipped=10, late=5), T) == QualityTier.POOR


def test_suppression_needs_min_orders_and_rate() -> None:
    assert suppression_reason(9, 9, T) is None
    assert suppression_reason(10, 2, T) is None
    reason = suppression_reason(10, 3, T)
    assert reason is not None and reason.code == "HIGH_REFUND_RATE" and "3 of 10" in reason.message


def test_late_and_lost_parcels_lower_the_tier_with_the_reason() -> None:
    from dataclasses import replace

    from shopstream_catalog.domain.quality import assess

    base = stats(100, shipped=100)
    # Too few packages to judge delivery: the order rates alone decide.
    assert assess(replace(base, packages=9, late_packages=9), T) == (QualityTier.EXCELLENT, [])
    tier, reasons = assess(replace(base, packages=20, late_packages=2), T)
    assert tier == QualityTier.FAIR and [r.code for r in reasons] == ["LATE_DELIVERIES"]
    assert reasons[0].message == "10% parcels late in the window; threshold 10%"
    tier, reasons = assess(replace(base, packages=20, late_packages=4, lost_packages=1), T)
    assert tier == QualityTier.POOR
    assert [r.code for r in reasons] == ["LATE_DELIVERIES", "LOST_PARCELS"]


def test_inbound_state_mirrors_the_proto() -> None:
    from shopstream.catalog.v1 import catalog_pb2
    from shopstream_catalog.domain.fulfilment import InboundState

    for state in InboundState:
        assert catalog_pb2.InboundState.Value(f"INBOUND_STATE_{state.name}") == state
