"""`shopstream campaigns list|report`: advertisers' campaigns and their reports (AdsService)."""

from __future__ import annotations

from collections.abc import Sequence

from shopstream.ads.v1 import ads_pb2
from shopstream.ads.v1 import ads_service_pb2 as pb
from shopstream.ads.v1.ads_service_pb2_grpc import AdsServiceStub
from shopstream.common.v1.paging_pb2 import PageRequest
from shopstream_cli.output import emit_message, emit_table, enum_label, money, note
from shopstream_cli.rpc import Target, connect
from shopstream_platform.settings import AuthSettings

CAMPAIGN_COLUMNS = [
    "campaign",
    "advertiser",
    "name",
    "status",
    "bid",
    "daily budget",
    "spent today",
    "total budget",
    "spent total",
]
REPORT_COLUMNS = [
    "day",
    "impressions",
    "clicks",
    "ctr",
    "spend",
    "orders",
    "attributed gmv",
    "roas",
]


def campaign_rows(campaigns: Sequence[ads_pb2.Campaign]) -> list[tuple[object, ...]]:
    return [
        (
            c.campaign_id,
            c.advertiser_id,
            c.name,
            enum_label(ads_pb2.CampaignStatus.Name(c.status), "CAMPAIGN_STATUS_"),
            f"{money(c.bid)} {enum_label(ads_pb2.BidType.Name(c.bid_type), 'BID_TYPE_')}",
            money(c.daily_budget),
            money(c.spent_today),
            money(c.total_budget),
            money(c.spent_total),
        )
        for c in campaigns
    ]


def report_row(row: pb.ReportRow, k_threshold: int) -> tuple[object, ...]:
    """One day (or the total); conversion cells under the k threshold show as `<k`, cells of a
    day not released yet as `later`."""
    hidden = (
        "later" if row.conversions_pending else (f"<{k_threshold}" if k_threshold else "hidden")
    )
    suppressed = row.conversions_suppressed
    orders = (
        hidden
        if suppressed
        else (row.attributed_orders if row.HasField("attributed_orders") else "")
    )
    roas = hidden if suppressed else (f"{row.roas:.2f}" if row.HasField("roas") else "")
    return (
        row.day,
        f"{row.impressions:,}",
        f"{row.clicks:,}",
        f"{row.ctr:.2%}",
        money(row.spend),
        orders,
        hidden if suppressed else money(row.attributed_gmv),
        roas,
    )


def report_rows(response: pb.GetCampaignReportResponse) -> list[tuple[object, ...]]:
    rows = [report_row(day, response.k_threshold) for day in response.days]
    if response.HasField("total"):
        total = list(report_row(response.total, response.k_threshold))
        total[0] = "total"
        rows.append(tuple(total))
    return rows


def report_notes(response: pb.GetCampaignReportResponse) -> list[str]:
    notes = [
        f"attribution model {response.model_version or '-'}; conversion cells with fewer than "
        f"{response.k_threshold} buyers are withheld"
    ]
    if response.noised:
        resets = (
            response.budget_resets_at.ToDatetime().strftime("%Y-%m-%d %H:%M UTC")
            if response.HasField("budget_resets_at")
            else "-"
        )
        notes.append(
            f"released cells: {response.noise_mechanism or 'noise'} with epsilon "
            f"{response.epsilon_per_cell:g} per cell, GMV clipped at {money(response.gmv_clip_bound)}"
            f" per order; totals add released days only ({response.total.days_withheld} withheld)"
        )
        notes.append(
            f"this query released {response.cells_released} new cells (epsilon "
            f"{response.epsilon_spent:g}); budget left {response.epsilon_remaining:g} this "
            f"{response.budget_epoch_days or 7}-day epoch (resets {resets}), "
            f"{response.epsilon_lifetime_remaining:g} lifetime"
        )
    else:
        notes.append("exact cells (audit principal)")
    t = response.total
    if t.invalid_clicks:
        notes.append(
            f"invalid clicks (not in the clicks column): {t.invalid_clicks:,} of {t.gross_clicks:,}"
            f" gross ({t.givt_clicks:,} general, {t.sivt_clicks:,} sophisticated); "
            f"{t.credited_clicks:,} billed before being flagged, their charge reversed"
        )
    return notes


def list_campaigns(
    target: Target,
    auth: AuthSettings,
    advertiser: str,
    limit: int,
    page_token: str,
    *,
    as_json: bool,
) -> int:
    with connect(target, auth) as conn:
        response = AdsServiceStub(conn.channel).ListCampaigns(
            pb.ListCampaignsRequest(
                advertiser_id=advertiser, page=PageRequest(page_size=limit, page_token=page_token)
            ),
            timeout=conn.timeout,
            metadata=conn.metadata,
        )
    if as_json:
        emit_message(response)
        return 0
    owner = f" of {advertiser}" if advertiser else ""
    emit_table(
        f"Campaigns{owner} ({len(response.campaigns)})",
        CAMPAIGN_COLUMNS,
        campaign_rows(response.campaigns),
        as_json=False,
    )
    if response.page.next_page_token:
        note(f"more: --page-token {response.page.next_page_token}")
    return 0


def report(
    target: Target,
    auth: AuthSettings,
    campaign_id: str,
    from_day: str,
    to_day: str,
    noise: bool,
    *,
    as_json: bool,
) -> int:
    with connect(target, auth) as conn:
        response = AdsServiceStub(conn.channel).GetCampaignReport(
            pb.GetCampaignReportRequest(
                campaign_id=campaign_id, from_day=from_day, to_day=to_day, noise=noise
            ),
            timeout=conn.timeout,
            metadata=conn.metadata,
        )
    if as_json:
        emit_message(response)
        return 0
    span = f"{from_day or 'start'} … {to_day or 'today'}"
    emit_table(
        f"Campaign {response.campaign_id or campaign_id} ({span})",
        REPORT_COLUMNS,
        report_rows(response),
        as_json=False,
    )
    for text in report_notes(response):
        note(text)
    return 0
