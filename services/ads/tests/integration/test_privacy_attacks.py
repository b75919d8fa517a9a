"""An advertiser tries to recover suppressed conversion cells by every subtraction it can form.

Through gRPC only, against the real broker: the ads service and creator-score both run, the
advertiser's campaign promotes a creator, two of its four day cells are below k. The advertiser
subtracts totals from days, overlapping ranges from each other, its own released cells from the
creator's ad-credited sales, and averages repeated queries. A suppressed cell counts as inferred
when some subtraction gives its exact number; none may be.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from ads_steps import AUDIT, NOW, AdsWorld, eventually

from shopstream.ads.v1 import ads_pb2
from shopstream.ads.v1 import ads_service_pb2 as pb
from shopstream.creators.v1 import creator_score_service_pb2 as cpb
from shopstream.creators.v1 import creator_score_service_pb2_grpc
from shopstream.social.v1 import creators_pb2 as social
from shopstream_creator_score.api.policy import POLICY as CREATOR_POLICY
from shopstream_creator_score.settings import CreatorScoreSettings
from shopstream_creator_score.wiring import wire as wire_creator_score
from shopstream_platform.grpc.auth import TokenCodec
from shopstream_platform.settings import KafkaSettings
from shopstream_platform.testing import fast_test_settings, hosted_service, start_group_at_end

pytestmark = pytest.mark.integration
DAY = timedelta(days=1)
# Every topic creator-score reads (the group starts at their end; missing ones are skipped).
CREATOR_INPUTS = [
    "social.creator-profiles.v1",
    "social.content-stats.v1",
    "commerce.orders.v1",
    "commerce.live.v1",
    "ads.attributions.v1",
    "creators.inputs.v1",
    "creators.input-batches.v1",
]


@dataclass
class CreatorScore:
    stub: creator_score_service_pb2_grpc.CreatorScoreServiceStub
    tokens: TokenCodec

    async def ad_sales(self, creator_id: str, role: str, ident: str) -> cpb.GetCreatorResponse:
        token = self.tokens.mint(role, ident)
        return await self.stub.GetCreator(
            cpb.GetCreatorRequest(creator_id=creator_id),
            metadata=(("authorization", f"Bearer {token}"),),
            timeout=10,
        )


@pytest.fixture
async def creator_score(
    kafka_settings: KafkaSettings, tmp_path: Path
) -> AsyncIterator[CreatorScore]:
    settings = CreatorScoreSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/cs.db",
        store="memory",
        data_dir=tmp_path / "cs-faust",
        faust_app_id=f"creator-score-ads-test-{uuid.uuid4().hex[:8]}",
        publish_step=0.0,
        **fast_test_settings(kafka_settings),
    )
    start_group_at_end(kafka_settings, settings.faust_app_id, CREATOR_INPUTS)
    async with (
        hosted_service(settings, wire_creator_score, policy=CREATOR_POLICY) as hosted,
        grpc.aio.insecure_channel(f"127.0.0.1:{hosted.port}") as channel,
    ):
        yield CreatorScore(
            creator_score_service_pb2_grpc.CreatorScoreServiceStub(channel),
            TokenCodec(settings.auth),
        )


Cell = tuple[int | None, int | None]  # (orders, GMV) as released; None: absent


def _cells(r: pb.GetCampaignReportResponse) -> dict[str, Cell]:
    return {
        d.day: (
            d.attributed_orders if d.HasField("attributed_orders") else None,
            d.attributed_gmv.amount_minor if d.HasField("attributed_gmv") else None,
        )
        for d in r.days
    }


def _total(r: pb.GetCampaignReportResponse) -> Cell:
    t = r.total
    return (
        t.attributed_orders if t.HasField("attributed_orders") else None,
        t.attributed_gmv.amount_minor if t.HasField("attributed_gmv") else None,
    )


def _minus(a: Cell, *others: Cell) -> Cell:
    """What an attacker computes: absent numbers count as 0 (all it knows of them)."""
    orders = (a[0] or 0) - sum(o[0] or 0 for o in others)
    gmv = (a[1] or 0) - sum(o[1] or 0 for o in others)
    return orders, gmv


async def test_an_advertiser_recovers_no_suppressed_cell_by_any_subtraction(
    ads: AdsWorld, creator_score: CreatorScore
) -> None:
    creator = ads.who("creator-x")
    profile = social.CreatorProfile(
        creator_id=creator, display_name="X", followers=50_000, declared_categories=["beauty"]
    )
    profile.at.FromDatetime(NOW - 10 * DAY)
    await ads.send("social.creator-profiles.v1", creator, profile, NOW - 10 * DAY)
    campaign = await ads.campaign("seller-attacker")
    # Day cells: buyers (amount, via the creator?) — two of them below k = 3.
    plan: list[list[tuple[int, bool]]] = [
        [(1_000, True)] * 5,  # shown
        [(3_000, True)] * 2,  # suppressed
        [(1_500, False)] * 4,  # shown
        [(7_000, False)],  # suppressed
    ]
    days = [NOW - (5 - i) * DAY for i in range(len(plan))]
    names = [d.strftime("%Y-%m-%d") for d in days]
    orders: list[str] = []
    for i, (day, buyers) in enumerate(zip(days, plan, strict=True)):
        for j, (amount, via_creator) in enumerate(buyers):
            buyer = f"atk-{i}-{j}"
            at = day + timedelta(minutes=j)
            await ads.click(buyer, campaign, at - timedelta(hours=1))
            orders.append(
                await ads.paid_order(buyer, amount, at, creator=creator if via_creator else "")
            )
    await ads.attributions(set(orders), expect=len(orders))

    async def audited() -> pb.GetCampaignReportResponse | None:
        r = await ads.audit(campaign)
        return r if r.total.attributed_orders == len(orders) else None

    exact = _cells(await eventually(audited))
    truth = {n: (len(b), sum(a for a, _ in b)) for n, b in zip(names, plan, strict=True)}
    assert exact == truth  # the audit principal sees the exact cells

    queries = 0

    async def report(first: str = "", last: str = "", **kw: Any) -> pb.GetCampaignReportResponse:
        nonlocal queries
        queries += 1
        return await ads.report(campaign, from_day=first, to_day=last, **kw)

    full = await report()
    released = _cells(full)
    suppressed = [n for n in names if released[n] == (None, None)]
    assert suppressed == [names[1], names[3]]
    # Every formula the advertiser can form, per suppressed cell: what it infers from each.
    inferences: dict[str, list[tuple[str, Cell]]] = {n: [] for n in suppressed}

    # 1. Total minus the visible days.
    visible = [released[n] for n in names if n not in suppressed]
    rest = _minus(_total(full), *visible)
    for n in suppressed:
        inferences[n].append(("total - visible days", rest))

    # 2. Every pair of nested or overlapping ranges whose difference is one suppressed day.
    ranges = {
        (a, b): await report(names[a], names[b])
        for a in range(len(names))
        for b in range(a, len(names))
    }
    for (a, b), outer in ranges.items():
        for (c, d), inner in ranges.items():
            left = set(range(a, b + 1)) - set(range(c, d + 1))
            if set(range(c, d + 1)) <= set(range(a, b + 1)) and len(left) == 1:
                (i,) = left
                if names[i] in suppressed:
                    inferences[names[i]].append(
                        (f"[{a}..{b}] - [{c}..{d}]", _minus(_total(outer), _total(inner)))
                    )
    # Overlapping ranges: day 0 = [0..3] - [1..3], so day 1 = [0..2] - day 0 - day 2's row.
    overlap = _minus(
        _total(ranges[(0, 2)]),
        _minus(_total(ranges[(0, 3)]), _total(ranges[(1, 3)])),
        released[names[2]],
    )
    inferences[names[1]].append(("[0..2] - ([0..3] - [1..3]) - day 2", overlap))

    # 3. Repeated queries averaged: the same answer every time, so the average is one draw;
    # noise=false and other tokens get the same released numbers.
    repeats = [await report() for _ in range(10)]
    repeats.append(await report(noise=True))
    repeats.append(await report(noise=False))
    repeats.append(await report(as_=("advertiser", campaign.advertiser_id)))
    repeats.append(await report(as_=("admin", "ops")))
    for r in repeats:
        assert _cells(r) == released and _total(r) == _total(full) and r.noised
        assert r.epsilon_spent == 0.0
    for n in suppressed:
        mean_orders = sum((_cells(r)[n][0] or 0) for r in repeats) / len(repeats)
        mean_gmv = sum((_cells(r)[n][1] or 0) for r in repeats) / len(repeats)
        inferences[n].append(("mean of repeated queries", (round(mean_orders), round(mean_gmv))))

    # 4. The creator's ad-credited sales against the campaign's released days the creator sold
    # on (day 0 shown, day 1 suppressed), as every token that can read them.
    callers = [
        ("seller", campaign.advertiser_id),
        ("advertiser", campaign.advertiser_id),
        ("creator", creator),
    ]

    async def credited() -> cpb.GetCreatorResponse | None:
        try:
            got = await creator_score.ad_sales(creator, *AUDIT)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return None  # creator-score has not applied the creator's first input yet
            raise
        return got if got.creator.ad_sales.orders == 7 else None

    exact_creator = (await eventually(credited)).creator.ad_sales
    assert not exact_creator.noised
    for role, ident in callers:
        sales = (await creator_score.ad_sales(creator, role, ident)).creator.ad_sales
        queries += 1
        assert sales.noised and not sales.withheld
        got: Cell = (sales.orders, sales.gmv.amount_minor)
        inferences[names[1]].append(
            (f"creator ad sales ({role}) - day 0", _minus(got, released[names[0]]))
        )
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await report(as_=("creator", creator))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED

    recovered = {
        n: [f for f, value in found if value == truth[n] or value[1] == truth[n][1]]
        for n, found in inferences.items()
    }
    print(f"\nqueries: {queries} (reports and creator reads)")
    print(f"suppressed cells: {suppressed} (exact {[truth[n] for n in suppressed]})")
    for n, found in inferences.items():
        print(f"  {n}: {len(found)} subtractions tried")
        for formula, value in found:
            print(f"    {formula:45} -> {value}")
    inferred = sum(1 for hits in recovered.values() if hits)
    print(f"cells inferred: {inferred}")
    assert inferred == 0, recovered
    # Exact subtractions within the report give nothing at all: totals are released sums.
    for n in suppressed:
        for formula, value in inferences[n]:
            if formula.startswith(("total", "[", "mean")) and "ad sales" not in formula:
                assert value in ((0, 0), released[n]), (formula, value)


async def test_every_token_but_audit_gets_released_cells_on_every_path(ads: AdsWorld) -> None:
    campaign = await ads.campaign("seller-paths")
    day = NOW - 2 * DAY
    orders = []
    for i in range(4):
        await ads.click(f"p-{i}", campaign, day - timedelta(hours=1))
        orders.append(await ads.paid_order(f"p-{i}", 2_500, day + timedelta(minutes=i)))
    await ads.attributions(set(orders), expect=4)

    async def audited() -> pb.GetCampaignReportResponse | None:
        r = await ads.audit(campaign)
        return r if r.total.attributed_orders == 4 else None

    exact = await eventually(audited)
    assert not exact.noised and exact.noise_mechanism == ""
    assert exact.days[0].attributed_gmv.amount_minor == 10_000
    # Audit asking with noise=true still gets exact cells: the token decides, not the flag.
    assert _cells(await ads.report(campaign, noise=True, as_=AUDIT)) == _cells(exact)

    released = await ads.report(campaign)
    for caller in (
        ("seller", campaign.advertiser_id),
        ("advertiser", campaign.advertiser_id),
        ("admin", "ops"),
        ("service", "edge"),
    ):
        for noise in (False, True):
            r = await ads.report(campaign, noise=noise, as_=caller)
            assert r.noised and r.noise_mechanism == "discrete-laplace"
            assert _cells(r) == _cells(released), caller
    for caller in (("creator", "someone"), ("buyer", "b-1"), ("seller", "another-seller")):
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await ads.report(campaign, as_=caller)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_request_fields_are_bounded_by_name(ads: AdsWorld) -> None:
    advertiser = ads.who("seller-bounds")

    async def create(**fields: Any) -> grpc.aio.AioRpcError:
        request = pb.CreateCampaignRequest(
            request_id=ads.next_id("req"),
            advertiser_id=advertiser,
            name="bounded",
            promoted_product_ids=["p-1"],
            bid_type=ads_pb2.BID_TYPE_CPC,
        )
        request.bid.amount_minor, request.bid.currency = 10, "USD"
        request.daily_budget.amount_minor, request.daily_budget.currency = 1_000, "USD"
        request.total_budget.amount_minor, request.total_budget.currency = 10_000, "USD"
        for name, value in fields.items():
            if isinstance(value, list):
                getattr(request, name).extend(value)
            else:
                setattr(request, name, value)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await ads.stub.CreateCampaign(
                request, metadata=ads.auth("seller", advertiser), timeout=10
            )
        return refused.value

    for fields, named in (
        ({"promoted_product_ids": [f"p-{i}" for i in range(5_000)]}, "promoted_product_ids"),
        ({"promoted_product_ids": ["x" * 100_000]}, "promoted_product_ids[1]"),
        ({"promoted_creator_ids": ["c" * 65]}, "promoted_creator_ids[0]"),
        ({"placements": ["feed"] * 21}, "placements"),
        ({"request_id": "r" * 129}, "request_id"),
        ({"name": "n" * 201}, "name"),
    ):
        error = await create(**fields)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, fields.keys()
        assert named in (error.details() or ""), (named, error.details())

    click = ads_pb2.Click(
        click_id="c" * 10_000, campaign_id="cmp-1", buyer_id="b-1", impression_id="i-1"
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await ads.stub.RecordClick(
            pb.RecordClickRequest(click=click), metadata=ads.auth(), timeout=10
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "click.click_id" in (refused.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await ads.stub.SelectAds(
            pb.SelectAdsRequest(placement="feed", context_product_ids=["p"] * 1_000),
            metadata=ads.auth(),
            timeout=10,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "context_product_ids" in (refused.value.details() or "")
