"""What the simulator did, counted only on answers the services confirmed, and the run's summary.

The money columns let a test reconcile with commerce: paid - refunded here equals the change of
commerce's GMV and refund counters over the run.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MAX_WARNINGS = 100
# The traffic counters that are Kafka records the simulator produced (counted when acknowledged).
RECORD_COUNTERS = (
    "impressions",
    "clicks",
    "bot_impressions",
    "bot_clicks",
    "profiles",
    "content_stats",
    "live_stats",
)


@dataclass
class FraudActors:
    bot_install_ids: list[str] = field(default_factory=list)
    bot_buyer_ids: list[str] = field(default_factory=list)
    # product key (the simulator's name) → catalog product id, with catalog's verdict at creation.
    counterfeit_products: dict[str, str] = field(default_factory=dict)
    counterfeit_verdicts: dict[str, list[str]] = field(default_factory=dict)
    fake_follower_creator_ids: list[str] = field(default_factory=list)
    refund_heavy_seller_id: str = ""
    refund_heavy_product_ids: list[str] = field(default_factory=list)
    # Planted for issue 20, not fraud: the seller who ships late (its tier must drop) and the
    # order whose cart sits in both of the platform's centres (it must ship as two packages).
    late_shipper_id: str = ""
    split_cart_order_id: str = ""


@dataclass
class Minute:
    orders: int = 0
    paid: int = 0
    gmv_minor: int = 0


class Ledger:
    def __init__(self) -> None:
        self.orders: Counter[str] = Counter()
        self.rejections: Counter[str] = Counter()
        self.paid_minor: Counter[str] = Counter()
        self.refunded_minor: Counter[str] = Counter()
        self.traffic: Counter[str] = Counter()
        # Packages, carriers and the platform's centres (shipping.py, warehouses.py).
        self.fulfilment: Counter[str] = Counter()
        # Impressions Kafka acknowledged per campaign id (buyers' and bots'), for reconciliation.
        self.served: Counter[str] = Counter()
        self.rpc_errors: Counter[str] = Counter()
        self.fraud = FraudActors()
        self.minutes: dict[int, Minute] = {}
        self.warnings: list[str] = []
        self.paid_order_ids: set[str] = set()
        # Orders this run placed: the day-end check judges these (the stack may hold others).
        self.placed_order_ids: set[str] = set()
        # The late shipper's quality tier each time it changed, as catalog answered while the
        # day ran: (seconds into the traffic, tier, reason codes).
        self.late_shipper_tiers: list[tuple[float, str, list[str]]] = []

    def minute(self, elapsed_s: float) -> Minute:
        return self.minutes.setdefault(int(max(0.0, elapsed_s) // 60), Minute())

    def placed(self, elapsed_s: float, order_id: str = "") -> None:
        self.orders["placed"] += 1
        if order_id:
            self.placed_order_ids.add(order_id)
        self.minute(elapsed_s).orders += 1

    def paid(self, order_id: str, currency: str, amount_minor: int, elapsed_s: float) -> None:
        if order_id in self.paid_order_ids:
            return  # a retried PayOrder already confirmed: count the money once
        self.paid_order_ids.add(order_id)
        self.orders["paid"] += 1
        self.paid_minor[currency] += amount_minor
        m = self.minute(elapsed_s)
        m.paid += 1
        m.gmv_minor += amount_minor

    def refunded(self, currency: str, amount_minor: int) -> None:
        self.orders["refunds_approved"] += 1
        self.refunded_minor[currency] += amount_minor

    def warn(self, message: str) -> None:
        if message in self.warnings:
            return
        if len(self.warnings) >= MAX_WARNINGS:
            self.rpc_errors["warnings not listed"] += 1
            return
        self.warnings.append(message)

    def events(self) -> int:
        """Kafka records acknowledged plus orders placed: what `--unit events` counts."""
        return sum(self.traffic[c] for c in RECORD_COUNTERS) + self.orders["placed"]

    def money(self) -> dict[str, dict[str, int]]:
        currencies = sorted(set(self.paid_minor) | set(self.refunded_minor))
        return {
            c: {
                "paid_minor": self.paid_minor[c],
                "refunded_minor": self.refunded_minor[c],
                "net_minor": self.paid_minor[c] - self.refunded_minor[c],
            }
            for c in currencies
        }


@dataclass
class Summary:
    run_id: str
    seed: int
    rate: float
    unit: str
    duration_s: float
    elapsed_s: float
    started_at: str
    finished_at: str
    # Stopped by Ctrl-C (or the caller) before the planned duration.
    interrupted: bool
    services: dict[str, str]
    orders: dict[str, int]
    rejections: dict[str, int]
    money: dict[str, dict[str, int]]
    traffic: dict[str, int]
    fraud: dict[str, Any]
    # Whether each fraud actor was caught, read back from the services after the run.
    caught: dict[str, Any]
    # Changes of service counters over the run (scraped from /metrics), where reachable.
    observed: dict[str, float]
    rpc_errors: dict[str, int]
    warnings: list[str]
    day: str = "normal"
    # Kafka records acknowledged + orders placed (Ledger.events), and seconds from start to end.
    events: int = 0
    wall_s: float = 0.0
    # Per service, records its consumer groups were behind (monitor.Snapshot.lag_summary).
    consumer_lag: dict[str, Any] = field(default_factory=dict)
    # The simulator's own ledger beside what the services counted, at the end of the day.
    reconciled: dict[str, Any] = field(default_factory=dict)
    # Packages shipped, tracked, delivered (on time or late), lost; inbound stock, returns
    # inspected into the platform's centres, fulfilment fees (shipping.py, warehouses.py).
    fulfilment: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")


def fraud_dict(actors: FraudActors) -> dict[str, Any]:
    return asdict(actors)
