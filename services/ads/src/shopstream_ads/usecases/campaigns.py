"""Campaign use cases: create, read, list, pause, resume — each change with its event, atomically."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from shopstream.ads.v1 import ads_events_pb2
from shopstream_ads import convert
from shopstream_ads.domain.campaigns import Campaign, validate_new
from shopstream_ads.settings import AdsSettings
from shopstream_ads.store import repository as repo
from shopstream_ads.topics import CAMPAIGNS_TOPIC
from shopstream_ads.usecases.campaign_book import CampaignBook
from shopstream_ads.usecases.limits import check_campaign
from shopstream_platform.db.database import Database
from shopstream_platform.db.outbox import Outbox
from shopstream_platform.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
from shopstream_platform.grpc.auth import Principal, ensure_acts_for
from shopstream_platform.ids import new_id
from shopstream_platform.paging import decode_cursor, encode_cursor

ADVERTISER_ROLES = ("seller", "advertiser")


def ensure_advertiser(principal: Principal, advertiser_id: str) -> None:
    """Advertisers are sellers: the caller is that seller (as seller or advertiser), or an admin."""
    ensure_acts_for(principal, ADVERTISER_ROLES, advertiser_id)


class Campaigns:
    def __init__(
        self, db: Database, outbox: Outbox, book: CampaignBook, settings: AdsSettings
    ) -> None:
        self._db = db
        self._outbox = outbox
        self._book = book
        self._settings = settings

    async def load(self) -> None:
        """Every campaign into the book (at start, before serving)."""
        async with self._db.read() as session:
            for c in await repo.all_campaigns(session):
                self._book.put_campaign(c)

    async def find(self, campaign_id: str) -> Campaign | None:
        """From the book, or the database when another replica created it."""
        found = self._book.campaign(campaign_id)
        if found is None and campaign_id:
            async with self._db.read() as session:
                found = await repo.get_campaign(session, campaign_id)
            if found is not None:
                self._book.put_campaign(found)
        return found

    async def create(self, principal: Principal, draft: Campaign, request_id: str) -> Campaign:
        ensure_advertiser(principal, draft.advertiser_id)
        if not request_id:
            raise InvalidArgumentError("request_id", "is required (the idempotency key)")
        check_campaign(draft, request_id)
        now = datetime.now(UTC)
        campaign = replace(
            draft,
            campaign_id=new_id("cmp"),
            starts_at=draft.starts_at if draft.starts_at.timestamp() > 0 else now,
            created_at=now,
            updated_at=now,
        )
        validate_new(campaign, self._settings.currency)
        async with self._db.transaction() as session:
            if not await repo.insert_campaign(session, campaign, request_id):
                earlier = await repo.campaign_by_request(session, draft.advertiser_id, request_id)
                assert earlier is not None
                return earlier
            await self._outbox.add(
                session,
                CAMPAIGNS_TOPIC,
                campaign.campaign_id,
                ads_events_pb2.CampaignCreated(
                    campaign=convert.campaign_pb(campaign, self._book, now)
                ),
                subject=campaign.campaign_id,
            )
        self._book.put_campaign(campaign)
        return campaign

    async def get(self, principal: Principal, campaign_id: str) -> Campaign:
        campaign = await self.find(campaign_id)
        if campaign is None:
            raise NotFoundError("campaign", campaign_id)
        ensure_advertiser(principal, campaign.advertiser_id)
        return campaign

    async def list(
        self, principal: Principal, advertiser_id: str, page_size: int, page_token: str
    ) -> tuple[list[Campaign], str]:
        if not advertiser_id and not principal.is_admin:
            raise InvalidArgumentError("advertiser_id", "is required")
        if advertiser_id:
            ensure_advertiser(principal, advertiser_id)
        limit = min(
            page_size or self._settings.list_default_page_size, self._settings.list_max_page_size
        )
        after = decode_cursor(page_token) if page_token else ""
        async with self._db.read() as session:
            found = list(await repo.list_campaigns(session, advertiser_id, after, limit + 1))
        page = found[:limit]
        token = encode_cursor(page[-1].campaign_id) if len(found) > limit else ""
        return page, token

    async def set_paused(self, principal: Principal, campaign_id: str, paused: bool) -> Campaign:
        current = await self.get(principal, campaign_id)
        if current.paused == paused:
            return current  # already in the asked state: idempotent
        now = datetime.now(UTC)
        if current.ends_at is not None and now >= current.ends_at:
            raise FailedPreconditionError(f"campaign {campaign_id} has ended")
        changed = current.with_paused(paused, now)
        async with self._db.transaction() as session:
            await repo.set_paused(session, changed)
            await self._outbox.add(
                session,
                CAMPAIGNS_TOPIC,
                campaign_id,
                ads_events_pb2.CampaignUpdated(
                    campaign=convert.campaign_pb(changed, self._book, now),
                    reason="paused by advertiser" if paused else "resumed by advertiser",
                ),
                subject=campaign_id,
            )
        self._book.put_campaign(changed)
        return changed
