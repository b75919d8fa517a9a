"""Per campaign, the attribution rules the worker decides by: its advertiser's windows and
engaged-view rule (domain/campaigns.py's `AttributionChoice`), or the platform's."""

from __future__ import annotations

from shopstream_ads.settings import AdsSettings
from shopstream_ads.usecases.campaign_book import CampaignBook


class CampaignRules:
    def __init__(self, book: CampaignBook, settings: AdsSettings) -> None:
        self._book = book
        self._settings = settings
        # Per campaign seen: (click window s, view window s, engaged-view ms) (`of`).
        self._found: dict[str, tuple[int, int, int]] = {}

    def of(self, campaign_id: str) -> tuple[int, int, int]:
        """The campaign's (click window s, view window s, engaged-view ms): its advertiser's
        choice or the platform's. A campaign this process has not seen yet gets the platform's:
        the book learns every campaign at start and at creation (the same process serves the
        API)."""
        found = self._found.get(campaign_id)
        if found is not None:
            return found
        rules = self._settings.attribution
        campaign = self._book.campaign(campaign_id)
        if campaign is None:
            return rules.click_window_s, rules.view_window_s, 0
        click_s, view_s = campaign.attribution.windows(rules.click_window_s, rules.view_window_s)
        found = (click_s, view_s, campaign.attribution.engaged_view_ms)
        # Campaigns are never edited: what is found once holds.
        self._found[campaign_id] = found
        return found

    def windows(self, campaign_id: str) -> tuple[int, int]:
        """(click window, view window) in seconds (`attribution.Windows`)."""
        click_s, view_s, _ = self.of(campaign_id)
        return click_s, view_s

    def model_version(self, campaign_id: str) -> str:
        """The attribution model with the windows that decided for this campaign."""
        click_s, view_s, engaged_ms = self.of(campaign_id)
        engaged = f"/engaged={engaged_ms}ms" if engaged_ms else ""
        return f"{self._settings.attribution.model}/click={click_s}s/view={view_s}s{engaged}"
