"""The in-process view the API reads: campaigns and each campaign's ledger.

Campaigns come from the database (loaded at start, updated by this process's API); ledgers come
from the attribution worker's table, mirrored here after every ledger update. SelectAds and
GetCampaignReport read only this memory, never the worker's tables or the database, so the
serving path makes no per-request database or network round trip.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from shopstream_ads.domain import ledger as lg
from shopstream_ads.domain.campaigns import Campaign, Spend


class CampaignBook:
    def __init__(self) -> None:
        self._campaigns: dict[str, Campaign] = {}
        self._ledgers: dict[str, dict[str, Any]] = {}

    def put_campaign(self, campaign: Campaign) -> None:
        self._campaigns[campaign.campaign_id] = campaign

    def campaign(self, campaign_id: str) -> Campaign | None:
        return self._campaigns.get(campaign_id)

    def campaigns(self) -> Iterator[Campaign]:
        return iter(list(self._campaigns.values()))

    def put_ledger(self, campaign_id: str, state: dict[str, Any]) -> None:
        # Shared with the worker's table, not copied: the ledger agent replaces a campaign's
        # state with a modified deep copy and never changes a stored one in place.
        self._ledgers[campaign_id] = state

    def spend(self, campaign_id: str, now: datetime) -> Spend:
        state = self._ledgers.get(campaign_id)
        if state is None:
            return Spend()
        today = state["days"].get(now.strftime("%Y-%m-%d"))
        return Spend(state["spent"], today[lg.SPEND] if today else 0)

    def totals(self, campaign_id: str) -> tuple[int, int]:
        """Impressions and clicks over the campaign's life (for the predicted click rate)."""
        state = self._ledgers.get(campaign_id)
        if state is None:
            return 0, 0
        cells = state["days"].values()
        return sum(c[lg.IMPS] for c in cells), sum(c[lg.CLICKS] for c in cells)

    def days(self, campaign_id: str) -> dict[str, list[int]]:
        state = self._ledgers.get(campaign_id)
        return {d: list(c) for d, c in state["days"].items()} if state else {}
