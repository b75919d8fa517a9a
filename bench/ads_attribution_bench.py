"""Attribution worker throughput and freshness of one ads process.

Targets (design): ad attribution >= 50,000 input events/s per worker; attribution freshness
p99 <= 1 s at 10,000 events/s.

Runs the ads service in this process (gRPC, SQLite in a temp dir, Faust with memory tables,
the Kafka broker given by --bootstrap; its worker group starts at the topics' current end),
creates one CPC campaign, then:
1. throughput: produces --events edge records as fast as the producer goes (impressions, and a
   click on every tenth, for --buyers buyers spread over the partitions) and times how long the
   worker takes until its ledger counted every one of them (events/s = records / that time,
   producing included, so it is a lower bound when producing is slower than processing);
2. freshness: at --rate paid orders per second, each preceded by a click, for --seconds, and
   reads the worker's own attribution-lag histogram (order paid -> credit published; it
   includes the join grace of `join_grace_s`, which the run sets to --grace).

    uv run python bench/ads_attribution_bench.py [--bootstrap 127.0.0.1:9092] [--events 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    bucket_quantile,
    counter_total,
    default_bootstrap,
    histogram_buckets,
    require_loopback,
)

from shopstream.ads.v1 import ads_pb2  # noqa: E402
from shopstream.ads.v1 import ads_service_pb2 as pb  # noqa: E402
from shopstream.ads.v1 import ads_service_pb2_grpc  # noqa: E402
from shopstream.commerce.v1 import order_events_pb2, order_pb2  # noqa: E402
from shopstream.common.v1 import money_pb2  # noqa: E402
from shopstream_ads.api.policy import POLICY  # noqa: E402
from shopstream_ads.settings import AdsSettings, AttributionSettings  # noqa: E402
from shopstream_ads.store.tables import MIGRATIONS  # noqa: E402
from shopstream_ads.stream.topics import TOPICS  # noqa: E402
from shopstream_ads.wiring import wire  # noqa: E402
from shopstream_platform.grpc.auth import TokenCodec  # noqa: E402
from shopstream_platform.kafka.producer import EventProducer  # noqa: E402
from shopstream_platform.settings import GrpcSettings, KafkaSettings  # noqa: E402
from shopstream_platform.testing import hosted_service, start_group_at_end  # noqa: E402


LAG = "shopstream_ads_attribution_lag_seconds"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    kafka = KafkaSettings(bootstrap_servers=args.bootstrap)
    tmp = Path(tempfile.mkdtemp(prefix="ads-bench-"))
    settings = AdsSettings(
        database_url=f"sqlite+aiosqlite:///{tmp}/ads.db",
        store="memory",
        data_dir=tmp / "faust",
        faust_app_id=f"ads-bench-{uuid.uuid4().hex[:8]}",
        kafka=kafka,
        grpc=GrpcSettings(port=0, shutdown_grace_s=1),
        metrics_port=0,
        log_level="WARNING",
        attribution=AttributionSettings(join_grace_s=args.grace),
    )
    start_group_at_end(kafka, settings.faust_app_id, TOPICS)
    producer = EventProducer(kafka, "shopstream/bench-edge")
    codec = TokenCodec(settings.auth)
    run_id = uuid.uuid4().hex[:6]
    result: dict[str, Any] = {"events": args.events, "buyers": args.buyers}
    async with hosted_service(settings, wire, policy=POLICY, migrations=MIGRATIONS) as hosted:
        import grpc

        async with grpc.aio.insecure_channel(f"127.0.0.1:{hosted.port}") as channel:
            stub = ads_service_pb2_grpc.AdsServiceStub(channel)
            usd = lambda m: money_pb2.Money(amount_minor=m, currency="USD")  # noqa: E731
            created = await stub.CreateCampaign(
                pb.CreateCampaignRequest(
                    request_id="bench",
                    advertiser_id=f"bench-seller-{run_id}",
                    name="bench",
                    promoted_product_ids=["p1"],
                    bid_type=ads_pb2.BID_TYPE_CPC,
                    bid=usd(1),
                    daily_budget=usd(10**12),
                    total_budget=usd(10**12),
                ),
                metadata=(("authorization", f"Bearer {codec.mint('admin', 'bench')}"),),
                timeout=10,
            )
        campaign = created.campaign.campaign_id
        book = hosted.wired.book
        now = datetime.now(UTC) - timedelta(hours=1)

        # 1. Throughput.
        clicks = 0
        started = time.perf_counter()
        for i in range(args.events):
            buyer = f"b{run_id}-{i % args.buyers}"
            at = now + timedelta(milliseconds=i)
            imp = ads_pb2.Impression(
                impression_id=f"i{run_id}-{i}",
                campaign_id=campaign,
                buyer_id=buyer,
                placement="feed",
            )
            imp.at.FromDatetime(at)
            producer.publish("ads.impressions.v1", buyer, imp)
            if i % 10 == 9:
                click = ads_pb2.Click(
                    click_id=f"c{run_id}-{i}",
                    impression_id=imp.impression_id,
                    campaign_id=campaign,
                    buyer_id=buyer,
                    install_id=f"inst-{buyer}",
                )
                click.at.FromDatetime(at + timedelta(seconds=5))
                producer.publish("ads.clicks.v1", click.install_id, click)
                clicks += 1
            if i % 5_000 == 0:
                await asyncio.sleep(0)
        await asyncio.to_thread(producer.flush, 60)
        produced_s = time.perf_counter() - started
        total = args.events + clicks
        registry = hosted.runtime.metrics.registry

        def flagged() -> int:
            # With no join grace a click can overtake its impression (another topic, another
            # agent) and is flagged "no impression" instead of billed: it was processed too.
            return int(counter_total(registry, "shopstream_ads_flagged_clicks_total"))

        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            imps, clks = book.totals(campaign)
            if imps >= args.events and clks + flagged() >= clicks:
                break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        imps, clks = book.totals(campaign)
        result.update(
            input_records=total,
            produce_s=round(produced_s, 2),
            processed_s=round(elapsed, 2),
            counted=imps + clks,
            flagged_clicks=flagged(),
            complete=imps >= args.events and clks + flagged() >= clicks,
            events_per_s=round((imps + clks + flagged()) / elapsed),
        )

        # 2. Freshness at a steady order rate.
        interval = 1.0 / args.rate
        n = int(args.seconds * args.rate)
        t0 = time.perf_counter()
        for k in range(n):
            buyer = f"f{run_id}-{k}"
            at = datetime.now(UTC)
            imp = ads_pb2.Impression(
                impression_id=f"fi{run_id}-{k}", campaign_id=campaign, buyer_id=buyer
            )
            imp.at.FromDatetime(at - timedelta(minutes=2))
            producer.publish("ads.impressions.v1", buyer, imp)
            click = ads_pb2.Click(
                click_id=f"fc{run_id}-{k}",
                impression_id=imp.impression_id,
                campaign_id=campaign,
                buyer_id=buyer,
            )
            click.at.FromDatetime(at - timedelta(minutes=1))
            producer.publish("ads.clicks.v1", buyer, click)
            order = order_pb2.Order(
                order_id=f"fo{run_id}-{k}", buyer_id=buyer, total=usd(1_000), tracking_consent=True
            )
            paid = order_events_pb2.OrderPaid(order=order)
            paid.paid_at.FromDatetime(at)
            producer.publish("commerce.orders.v1", order.order_id, paid)
            await asyncio.sleep(max(0.0, t0 + (k + 1) * interval - time.perf_counter()))
        await asyncio.sleep(args.grace + 5)
        attributed = (
            registry.get_sample_value("shopstream_ads_attributions_total", {"touch": "click"}) or 0
        )
        result.update(
            freshness_orders=n,
            freshness_rate_per_s=args.rate,
            freshness_attributed=int(attributed),
            join_grace_s=args.grace,
            lag_p50_s=bucket_quantile(histogram_buckets(registry, LAG), 0.5),
            lag_p99_s=bucket_quantile(histogram_buckets(registry, LAG), 0.99),
        )
    producer.close()
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bootstrap", default=default_bootstrap())
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--buyers", type=int, default=2_000)
    p.add_argument("--rate", type=float, default=50.0, help="paid orders/s in the freshness run")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--grace", type=float, default=0.0, help="join grace for the run (s)")
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    require_loopback(args.bootstrap)
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
