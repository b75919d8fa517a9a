"""The running world: the plan, the ids the services assigned, the clients, and the ledger."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from shopstream_simulator.clients import Rpc, Services
from shopstream_simulator.config import SimConfig
from shopstream_simulator.edge import Edge
from shopstream_simulator.ledger import Ledger
from shopstream_simulator.plan import Plan
from shopstream_simulator.ratelimit import Limiter
from shopstream_simulator.world import CampaignSpec, World

ACTIVE = "LISTING_STATUS_ACTIVE"


@dataclass
class Listing:
    """A product as catalog knows it: its ids and current status."""

    key: str
    product_id: str
    seller_id: str
    category: str
    sku_ids: list[str]
    status: str
    reasons: list[str]

    @property
    def active(self) -> bool:
        return self.status == ACTIVE


@dataclass
class AdRules:
    """The ads service's attribution settings that shape buyer behaviour (GetAttributionSettings)."""

    min_click_to_order_s: float = 3.0
    burst_limit: int = 20
    burst_window_s: float = 60.0


@dataclass
class Context:
    config: SimConfig
    world: World
    plan: Plan
    ledger: Ledger
    rpc: Rpc
    services: Services
    edge: Edge
    orders_limit: Limiter
    listings: dict[str, Listing] = field(default_factory=dict)
    # campaign id (assigned by ads) → the simulator's spec
    campaigns: dict[str, CampaignSpec] = field(default_factory=dict)
    # live key → live session id (assigned by commerce), and those not ended yet
    lives: dict[str, str] = field(default_factory=dict)
    lives_open: set[str] = field(default_factory=set)
    ad_rules: AdRules = field(default_factory=AdRules)
    ads_ok: bool = False
    # Set when journeys must stop at their next step (Ctrl-C, or the drain ran out).
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    traffic_started: float | None = None
    wall_started: datetime = field(default_factory=lambda: datetime.now(UTC))
    restocking: set[str] = field(default_factory=set)
    # Inbound shipments this run sent into the platform's centres (catalog's ids).
    fulfilment_inbound: list[str] = field(default_factory=list)
    # buyer id → when (monotonic) they last clicked an ad: a person does not pay within
    # seconds of a click (ads flags that as impossible timing), whichever order it is.
    last_click: dict[str, float] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.world.run_id

    def elapsed(self) -> float:
        return time.monotonic() - self.traffic_started if self.traffic_started is not None else 0.0

    def wall(self, plan_s: float) -> datetime:
        """The wall-clock time of a plan time (negative plan times lie before the run)."""
        return self.wall_started + timedelta(seconds=plan_s)

    async def pause(self, seconds: float) -> bool:
        """Sleep, unless told to stop; False when the journey should stop here."""
        if self.stopping.is_set():
            return False
        try:
            await asyncio.wait_for(self.stopping.wait(), timeout=max(0.0, seconds))
        except TimeoutError:
            return True
        return False
