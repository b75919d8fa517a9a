"""After the run: did the services catch each fraudster? Read back through their APIs and metrics.

| fraud | caught when |
|---|---|
| counterfeit listing | catalog GetProduct: not ACTIVE, with PRICE_FAR_BELOW_MEDIAN among the reasons |
| fake followers | creator-score GetCreator: FOLLOWER_SPIKE_WITHOUT_ENGAGEMENT flag |
| refund-heavy seller | catalog GetSellerQuality: a listing SUPPRESSED (HIGH_REFUND_RATE) or tier POOR |
| click-spam bots | ads /metrics: shopstream_ads_flagged_clicks_total{reason="device_burst"} grew by at least the bot clicks over the burst limit |

Planted for issue 20 (not fraud, read back the same way):

| planted | shown when |
|---|---|
| late shipper | catalog GetSellerQuality: FAIR or POOR with LATE_DELIVERIES, after a better tier was seen during the day (watch_late_shipper) |
| split cart | commerce GetOrder: two packages from the two centres, each tracked, and the order DELIVERED |

The ledger is reconciled with the services (`reconcile`): net GMV with commerce's counters,
the impressions of this world's campaigns with ads' reports. That compares the simulator's own
ledger; `shopstream reconcile` (main.py runs it after the day) recounts every number from the
published topics alone.

And commerce's day-end check (CheckLeaks) is clean: no unit reserved for an order that can no
longer ship, no payment intent left open, no refund at the provider unconfirmed.
"""

from __future__ import annotations

import asyncio
from typing import Any

from grpc import aio

from shopstream.ads.v1 import ads_service_pb2
from shopstream.catalog.v1 import catalog_pb2, catalog_service_pb2
from shopstream.commerce.v1 import commerce_service_pb2, commissions_pb2, order_pb2
from shopstream.common.v1.paging_pb2 import PageRequest
from shopstream.creators.v1 import creator_score_service_pb2 as cs
from shopstream_simulator.clients import ADMIN, AUDIT
from shopstream_simulator.context import Context
from shopstream_simulator.monitor import Snapshot

SPIKE_FLAG = "FOLLOWER_SPIKE_WITHOUT_ENGAGEMENT"
T = catalog_pb2.QualityTier
# Best first: a tier "drops" when it moves right in this order (NEW is no judgement yet).
TIER_ORDER = (
    T.QUALITY_TIER_EXCELLENT,
    T.QUALITY_TIER_GOOD,
    T.QUALITY_TIER_FAIR,
    T.QUALITY_TIER_POOR,
)
TIER_NAMES = tuple(T.Name(t) for t in TIER_ORDER)
WATCH_EVERY_S = 1.0
FLAGGED_METRIC = "shopstream_ads_flagged_clicks_total"
# Catalog judges a listing's refund rate from 10 orders on.
MIN_ORDERS_TO_JUDGE = 10


async def check(ctx: Context, snapshot: Snapshot) -> dict[str, Any]:
    results = await asyncio.gather(
        _counterfeits(ctx),
        _fakes(ctx),
        _refund_seller(ctx),
        _bots(ctx, snapshot),
        _leaks(ctx),
        _late_shipper(ctx),
        _split_cart(ctx),
    )
    return dict(
        zip(
            (
                "counterfeit_listings",
                "fake_followers",
                "refund_heavy_seller",
                "click_bots",
                "day_end_check",
                "late_shipper",
                "split_cart",
            ),
            results,
            strict=True,
        )
    )


async def reconcile(ctx: Context, snapshot: Snapshot) -> dict[str, Any]:
    """The simulator's ledger beside the services' counts over the run: net GMV per currency
    (commerce's counters) and the impressions of this world's campaigns (ads' exact reports,
    which count each new impression once, as the ledger counts each acknowledged one; other
    stacks' traffic on a shared broker does not touch these campaigns). `exact` when every pair
    is equal. `ads.impressions.all` is ads' counter over the whole stack, for information."""
    observed = snapshot.observed()
    pairs: dict[str, dict[str, int | None]] = {}
    for currency, m in ctx.ledger.money().items():
        gmv = observed.get(f"commerce.gmv_minor.{currency}")
        refunded = observed.get(f"commerce.refunded_minor.{currency}", 0.0)
        pairs[f"net_minor.{currency}"] = {
            "simulator": m["net_minor"],
            "service": None if gmv is None else round(gmv - refunded),
        }
    if ctx.ads_ok and ctx.campaigns:
        total = 0
        try:
            for campaign_id in sorted(ctx.campaigns):
                answer = await ctx.rpc(
                    ctx.services.ads.GetCampaignReport,
                    ads_service_pb2.GetCampaignReportRequest(campaign_id=campaign_id),
                    as_=AUDIT,
                    attempts=2,
                )
                total += answer.total.impressions
            counted: int | None = total
        except aio.AioRpcError:
            counted = None
        pairs["ads.impressions.this_world"] = {
            "simulator": sum(ctx.ledger.served[c] for c in ctx.campaigns),
            "service": counted,
        }
    info: dict[str, Any] = {}
    if ctx.ads_ok and (stack := observed.get("ads.impressions")) is not None:
        traffic = ctx.ledger.traffic
        info["ads.impressions.all"] = {
            "simulator": traffic["impressions"] + traffic["bot_impressions"],
            "service": round(stack),
        }
    exact = all(p["simulator"] == p["service"] for p in pairs.values())
    return {**pairs, "exact": exact, "info": info}


def all_caught(verdicts: dict[str, Any]) -> bool:
    return all(v.get("caught") is not False for v in verdicts.values())


async def _leaks(ctx: Context) -> dict[str, Any]:
    """`caught` here means the day-end check came back clean (nothing leaked to catch)."""
    try:
        report = await ctx.rpc(
            ctx.services.commerce.CheckLeaks, commerce_service_pb2.CheckLeaksRequest(), as_=ADMIN
        )
    except aio.AioRpcError as exc:
        return {"caught": False, "error": exc.code().name}
    # The check covers the whole stack; reservations of orders an earlier run placed are listed
    # apart (a stack kept between runs keeps their state) and do not decide this run's verdict.
    mine = ctx.ledger.placed_order_ids
    leaked = [r.order_id for r in report.leaked_reservations]
    ours = [o for o in leaked if o in mine]
    return {
        "leaked_reservations": ours,
        "earlier_leaked_reservations": [o for o in leaked if o not in mine],
        "overdue_intents": [i.intent_id for i in report.overdue_intents],
        "unconfirmed_refunds": [u.refund_key for u in report.unsettled_refunds],
        "caught": report.clean or not (ours or report.overdue_intents or report.unsettled_refunds),
    }


async def _counterfeits(ctx: Context) -> dict[str, Any]:
    products = ctx.ledger.fraud.counterfeit_products
    if not products:
        return {"caught": None, "why": "no counterfeit listing was created"}
    found: dict[str, Any] = {}
    for key, product_id in sorted(products.items()):
        try:
            answer = await ctx.rpc(
                ctx.services.catalog.GetProduct,
                catalog_service_pb2.GetProductRequest(product_id=product_id),
            )
        except aio.AioRpcError as exc:
            found[key] = {"product_id": product_id, "error": exc.code().name}
            continue
        status = catalog_pb2.ListingStatus.Name(answer.product.status)
        reasons = [r.code for r in answer.product.status_reasons]
        found[key] = {
            "product_id": product_id,
            "status": status,
            "reasons": reasons,
            "caught": status != "LISTING_STATUS_ACTIVE" and "PRICE_FAR_BELOW_MEDIAN" in reasons,
        }
    return {"caught": all(v.get("caught", False) for v in found.values()), "listings": found}


async def _fakes(ctx: Context) -> dict[str, Any]:
    ids = ctx.ledger.fraud.fake_follower_creator_ids
    if not ids:
        return {"caught": None, "why": "no fake-follower creator in this world"}
    if not ctx.services.serving("creator-score"):
        return {"caught": None, "why": "creator-score is not serving"}
    if not ctx.ledger.traffic["fake_follower_spikes"]:
        return {"caught": None, "why": "the run ended before the followers were bought"}
    found: dict[str, Any] = {}
    for creator_id in ids:
        try:
            answer = await ctx.rpc(
                ctx.services.creators.GetCreator,
                cs.GetCreatorRequest(creator_id=creator_id),
                as_=ADMIN,
                attempts=2,
            )
        except aio.AioRpcError as exc:
            found[creator_id] = {"error": exc.code().name, "caught": False}
            continue
        c = answer.creator
        found[creator_id] = {
            "followers": c.followers,
            "score": c.score,
            "authenticity": c.components.authenticity,
            "flags": list(c.flags),
            "caught": SPIKE_FLAG in c.flags,
        }
    return {"caught": all(v["caught"] for v in found.values()), "creators": found}


async def _refund_seller(ctx: Context) -> dict[str, Any]:
    seller_id = ctx.ledger.fraud.refund_heavy_seller_id
    if not seller_id:
        return {"caught": None, "why": "no refund-heavy seller"}
    if ctx.ledger.orders["placed_refund_heavy_seller"] < MIN_ORDERS_TO_JUDGE:
        return {"caught": None, "why": "the run ended before the seller had enough orders"}
    try:
        answer = await ctx.rpc(
            ctx.services.catalog.GetSellerQuality,
            catalog_service_pb2.GetSellerQualityRequest(seller_id=seller_id),
            as_=ADMIN,
        )
    except aio.AioRpcError as exc:
        return {"caught": False, "error": exc.code().name}
    q = answer.quality
    tier = catalog_pb2.QualityTier.Name(q.tier)
    return {
        "seller_id": seller_id,
        "tier": tier,
        "orders": q.orders,
        "refund_rate": round(q.refund_rate, 3),
        "suppressed_listings": q.suppressed_listings,
        "caught": q.suppressed_listings > 0 or tier == "QUALITY_TIER_POOR",
    }


async def _bots(ctx: Context, snapshot: Snapshot) -> dict[str, Any]:
    produced = ctx.ledger.traffic["bot_clicks"]
    if not produced:
        return {"caught": None, "why": "no bot clicks were produced (ads unavailable?)"}
    flagged = snapshot.delta_by("ads", FLAGGED_METRIC, "reason")
    if snapshot.metrics.get("ads") is None:
        return {"caught": None, "why": "ads /metrics not reachable", "bot_clicks": produced}
    # Each install's first `burst_limit` clicks in the window look human; the rest are a burst.
    expected = produced - ctx.ad_rules.burst_limit * len(ctx.world.bots)
    device = flagged.get("device_burst", 0.0)
    return {
        "bot_clicks": produced,
        "install_ids": ctx.ledger.fraud.bot_install_ids,
        "flagged_by_reason": flagged,
        "expected_at_least": expected,
        "caught": device >= expected,
    }


# --- planted for issue 20 ---------------------------------------------------------------------


def tier_dropped(tiers: list[str]) -> bool:
    """Some judged tier was followed, later, by a worse one (NEW, unjudged, is neither)."""
    ranks = [TIER_NAMES.index(t) for t in tiers if t in TIER_NAMES]
    return any(later > earlier for i, earlier in enumerate(ranks) for later in ranks[i + 1 :])


async def _quality(ctx: Context, seller_id: str) -> catalog_pb2.SellerQuality:
    answer = await ctx.rpc(
        ctx.services.catalog.GetSellerQuality,
        catalog_service_pb2.GetSellerQualityRequest(seller_id=seller_id),
        as_=ADMIN,
        attempts=2,
    )
    return answer.quality


async def watch_late_shipper(ctx: Context) -> None:
    """While the day runs: the late shipper's tier each time it changes (the drop from a good
    tier is over in seconds, so only a watch sees both sides of it). Runs until cancelled."""
    seller_id = ctx.world.late_shipper.seller_id
    tiers = ctx.ledger.late_shipper_tiers
    while True:
        try:
            q = await _quality(ctx, seller_id)
        except aio.AioRpcError:
            q = None  # counted by Rpc; look again
        if q is not None:
            tier = T.Name(q.tier)
            if not tiers or tiers[-1][1] != tier:
                tiers.append((round(ctx.elapsed(), 1), tier, [r.code for r in q.tier_reasons]))
        await asyncio.sleep(WATCH_EVERY_S)


async def _late_shipper(ctx: Context) -> dict[str, Any]:
    seller_id = ctx.ledger.fraud.late_shipper_id
    if not seller_id:
        return {"caught": None, "why": "no late shipper was set up"}
    f = ctx.ledger.fulfilment
    if f["late_shipments_not_waited"]:
        return {
            "caught": None,
            "why": "commerce's ship-by is further off than late_ship_wait_s: nothing shipped late",
        }
    if not f["shipped_late_on_purpose"]:
        return {"caught": None, "why": "the run ended before the seller shipped late"}
    try:
        q = await _quality(ctx, seller_id)
    except aio.AioRpcError as exc:
        return {"caught": False, "error": exc.code().name}
    tier = T.Name(q.tier)
    seen = [t for _, t, _ in ctx.ledger.late_shipper_tiers]
    if not seen or seen[-1] != tier:
        seen.append(tier)
    reasons = {r.code: r.message for r in q.tier_reasons}
    return {
        "seller_id": seller_id,
        "tier": tier,
        "tiers_seen": [
            {"at_s": at, "tier": t, "reasons": codes}
            for at, t, codes in ctx.ledger.late_shipper_tiers
        ],
        "reasons": reasons,
        "orders": q.orders,
        "packages": q.packages,
        "late_delivery_rate": round(q.late_delivery_rate, 3),
        "late_shipment_rate": round(q.late_shipment_rate, 3),
        "shipped_late": f["shipped_late_on_purpose"],
        "caught": "LATE_DELIVERIES" in reasons and tier_dropped(seen),
    }


async def _split_cart(ctx: Context) -> dict[str, Any]:
    order_id = ctx.ledger.fraud.split_cart_order_id
    if not order_id:
        return {"caught": None, "why": "the split cart was not placed (the run ended first?)"}
    try:
        answer = await ctx.rpc(
            ctx.services.commerce.GetOrder,
            commerce_service_pb2.GetOrderRequest(order_id=order_id),
            as_=ADMIN,
        )
    except aio.AioRpcError as exc:
        return {"caught": False, "error": exc.code().name}
    order = answer.order
    packages = [
        {
            "warehouse_id": p.warehouse_id,
            "state": order_pb2.PackageState.Name(p.state),
            "tracking_number": p.tracking_number,
        }
        for p in answer.packages
    ]
    state = order_pb2.OrderState.Name(order.state)
    centres = {c.warehouse_id for c in ctx.world.fulfilment_centres}
    two = len(packages) == 2 and {p["warehouse_id"] for p in packages} == centres
    verdict: dict[str, Any] = {"order_id": order_id, "state": state, "packages": packages}
    if any(p.state == order_pb2.PACKAGE_STATE_LOST for p in answer.packages):
        # The carrier's lost share hit it: two packages, but it will never be DELIVERED.
        return {**verdict, "caught": None, "why": "the carrier lost one of its parcels"}
    if state in ("ORDER_STATE_REJECTED", "ORDER_STATE_CANCELLED"):
        return {**verdict, "caught": None, "why": f"the order was {state}"}
    delivered = order.state == order_pb2.ORDER_STATE_DELIVERED
    tracked = all(p["tracking_number"] for p in packages)
    return {**verdict, "caught": two and tracked and delivered}


async def storage_fees(ctx: Context) -> None:
    """The storage fees catalog charged the platform-fulfilled sellers for their units in the
    centres, as commerce booked them (STORAGE_FEE on each seller's ledger), into the ledger's
    fulfilment counters."""
    f = ctx.ledger.fulfilment
    f["storage_charges"] = 0
    f["storage_fees_minor"] = 0
    for seller in ctx.world.sellers:
        if seller.fulfilment != "platform":
            continue
        token = ""
        while True:
            try:
                answer = await ctx.rpc(
                    ctx.services.commerce.GetSellerBalance,
                    commerce_service_pb2.GetSellerBalanceRequest(
                        seller_id=seller.seller_id,
                        page=PageRequest(page_size=100, page_token=token),
                    ),
                    as_=("seller", seller.seller_id),
                )
            except aio.AioRpcError as exc:
                ctx.ledger.warn(f"storage fees of {seller.seller_id} not read: {exc.code().name}")
                break
            for entry in answer.entries:
                if entry.kind == commissions_pb2.SELLER_ENTRY_KIND_STORAGE_FEE:
                    f["storage_charges"] += 1
                    f["storage_fees_minor"] += -entry.amount.amount_minor
            token = answer.page.next_page_token
            if not token:
                break
