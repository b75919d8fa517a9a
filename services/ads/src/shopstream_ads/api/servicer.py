"""AdsService over gRPC: requests to use cases and results to responses, nothing more."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shopstream.ads.v1 import ads_pb2, ads_service_pb2_grpc
from shopstream.ads.v1 import ads_service_pb2 as pb
from shopstream.common.v1 import paging_pb2
from shopstream_ads import convert
from shopstream_ads.domain.campaigns import Campaign
from shopstream_ads.settings import AdsSettings
from shopstream_ads.usecases.auctions import Auctions
from shopstream_ads.usecases.campaign_book import CampaignBook
from shopstream_ads.usecases.campaigns import Campaigns
from shopstream_ads.usecases.new_campaigns import CampaignRequest, NewCampaigns
from shopstream_ads.usecases.reports import Report, Reports, Row
from shopstream_ads.usecases.traffic import Traffic
from shopstream_platform.grpc.auth import current_principal

Context = Any


class AdsServicer(ads_service_pb2_grpc.AdsServiceServicer):
    def __init__(
        self,
        campaigns: Campaigns,
        new_campaigns: NewCampaigns,
        auctions: Auctions,
        traffic: Traffic,
        reports: Reports,
        book: CampaignBook,
        settings: AdsSettings,
    ) -> None:
        self._campaigns = campaigns
        self._new_campaigns = new_campaigns
        self._auctions = auctions
        self._traffic = traffic
        self._reports = reports
        self._book = book
        self._settings = settings

    def _pb(self, c: Campaign) -> ads_pb2.Campaign:
        return convert.campaign_pb(c, self._book, datetime.now(UTC))

    async def CreateCampaign(
        self, request: pb.CreateCampaignRequest, context: Context
    ) -> pb.CreateCampaignResponse:
        asked = CampaignRequest(
            advertiser_id=request.advertiser_id,
            name=request.name,
            promoted_product_ids=tuple(request.promoted_product_ids),
            promoted_creator_ids=tuple(request.promoted_creator_ids),
            bid_type=int(request.bid_type),
            bid_minor=request.bid.amount_minor,
            currency=request.bid.currency,
            daily_budget_minor=request.daily_budget.amount_minor,
            daily_budget_currency=request.daily_budget.currency,
            total_budget_minor=request.total_budget.amount_minor,
            total_budget_currency=request.total_budget.currency,
            starts_at=convert.when(request.starts_at) if request.HasField("starts_at") else None,
            ends_at=convert.when(request.ends_at) if request.HasField("ends_at") else None,
            placements=tuple(request.placements),
            attribution=convert.attribution_choice(request.attribution),
        )
        created = await self._new_campaigns.create(current_principal(), asked, request.request_id)
        return pb.CreateCampaignResponse(campaign=self._pb(created))

    async def GetCampaign(
        self, request: pb.GetCampaignRequest, context: Context
    ) -> pb.GetCampaignResponse:
        found = await self._campaigns.get(current_principal(), request.campaign_id)
        return pb.GetCampaignResponse(campaign=self._pb(found))

    async def ListCampaigns(
        self, request: pb.ListCampaignsRequest, context: Context
    ) -> pb.ListCampaignsResponse:
        page, token = await self._campaigns.list(
            current_principal(),
            request.advertiser_id,
            request.page.page_size,
            request.page.page_token,
        )
        return pb.ListCampaignsResponse(
            campaigns=[self._pb(c) for c in page],
            page=paging_pb2.PageInfo(next_page_token=token, total_size=-1),
        )

    async def PauseCampaign(
        self, request: pb.PauseCampaignRequest, context: Context
    ) -> pb.PauseCampaignResponse:
        changed = await self._campaigns.set_paused(current_principal(), request.campaign_id, True)
        return pb.PauseCampaignResponse(campaign=self._pb(changed))

    async def ResumeCampaign(
        self, request: pb.ResumeCampaignRequest, context: Context
    ) -> pb.ResumeCampaignResponse:
        changed = await self._campaigns.set_paused(current_principal(), request.campaign_id, False)
        return pb.ResumeCampaignResponse(campaign=self._pb(changed))

    async def SelectAds(
        self, request: pb.SelectAdsRequest, context: Context
    ) -> pb.SelectAdsResponse:
        auction_id, wins, candidates = self._auctions.select(
            request.placement, request.slots, request.context_product_ids
        )
        return pb.SelectAdsResponse(
            auction_id=auction_id,
            candidates=candidates,
            ads=[
                pb.SelectedAd(
                    campaign_id=w.candidate.campaign.campaign_id,
                    advertiser_id=w.candidate.campaign.advertiser_id,
                    bid_type=convert.bid_type_pb(w.candidate.campaign.bid_type),
                    promoted_product_ids=w.candidate.campaign.promoted_product_ids,
                    promoted_creator_ids=w.candidate.campaign.promoted_creator_ids,
                    ecpm_minor=w.candidate.ecpm,
                    predicted_ctr=w.candidate.predicted_ctr,
                    clearing_price=convert.money(
                        w.clearing_price_minor, w.candidate.campaign.currency
                    ),
                    rank=w.rank,
                )
                for w in wins
            ],
        )

    async def RecordImpression(
        self, request: pb.RecordImpressionRequest, context: Context
    ) -> pb.RecordImpressionResponse:
        await self._traffic.record_impression(request.impression)
        return pb.RecordImpressionResponse()

    async def RecordClick(
        self, request: pb.RecordClickRequest, context: Context
    ) -> pb.RecordClickResponse:
        await self._traffic.record_click(request.click)
        return pb.RecordClickResponse()

    async def GetCampaignReport(
        self, request: pb.GetCampaignReportRequest, context: Context
    ) -> pb.GetCampaignReportResponse:
        # request.noise is ignored: the caller's token decides (docs/ads.md, usecases/reports.py).
        report = await self._reports.report(
            current_principal(), request.campaign_id, request.from_day, request.to_day
        )
        return _report_pb(report, self._settings)

    async def GetAttributionSettings(
        self, request: pb.GetAttributionSettingsRequest, context: Context
    ) -> pb.GetAttributionSettingsResponse:
        a, t, p = self._settings.attribution, self._settings.traffic, self._settings.privacy
        return pb.GetAttributionSettingsResponse(
            model_version=a.version,
            click_window_seconds=a.click_window_s,
            view_window_seconds=a.view_window_s,
            k_threshold=p.k_threshold,
            epsilon_per_query=p.epsilon_per_cell,
            epsilon_budget=p.epsilon_epoch_budget,
            min_click_to_order_seconds=int(a.min_click_to_order_s),
            burst_limit=t.device_burst_limit,
            burst_window_seconds=int(t.burst_window_s),
            budget_epoch_days=p.epoch_days,
            epsilon_lifetime_budget=p.epsilon_lifetime_budget,
            gmv_clip_minor=p.gmv_clip_minor,
        )


def _report_pb(report: Report, settings: AdsSettings) -> pb.GetCampaignReportResponse:
    currency = report.campaign.currency
    p = settings.privacy
    out = pb.GetCampaignReportResponse(
        campaign_id=report.campaign.campaign_id,
        days=[_row_pb(r, currency) for r in report.days],
        total=_row_pb(report.total, currency),
        k_threshold=p.k_threshold,
        noised=not report.exact,
        epsilon_spent=report.epsilon_spent,
        epsilon_remaining=report.epsilon_remaining,
        model_version=settings.attribution.version,
        epsilon_per_cell=p.epsilon_per_cell,
        gmv_clip_bound=convert.money(p.gmv_clip_minor, currency),
        noise_mechanism="" if report.exact else "discrete-laplace",
        epsilon_lifetime_remaining=report.epsilon_lifetime_remaining,
        cells_released=report.cells_released,
        budget_epoch_days=p.epoch_days,
    )
    if report.resets_at is not None:
        out.budget_resets_at.CopyFrom(convert.timestamp(report.resets_at))
    return out


def _row_pb(r: Row, currency: str) -> pb.ReportRow:
    row = pb.ReportRow(
        day=r.day,
        impressions=r.impressions,
        clicks=r.clicks,
        ctr=r.clicks / r.impressions if r.impressions else 0.0,
        spend=convert.money(r.spend_minor, currency),
        conversions_suppressed=r.conversions is None,
        conversions_pending=r.pending,
        days_withheld=r.days_withheld,
        invalid_clicks=r.invalid.total,
        gross_clicks=r.clicks + r.invalid.total,
        givt_clicks=r.invalid.givt,
        sivt_clicks=r.invalid.sivt,
        credited_clicks=r.invalid.credited,
    )
    if r.conversions is not None and r.gmv_minor is not None:
        row.attributed_orders = r.conversions
        row.attributed_gmv.CopyFrom(convert.money(r.gmv_minor, currency))
        if r.spend_minor:
            row.roas = r.gmv_minor / r.spend_minor
    return row
