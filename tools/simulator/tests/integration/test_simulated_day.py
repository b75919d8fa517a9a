"""End to end: a short simulated day against the four real services on the real broker,
scraped by a real Prometheus.

The test starts its own four service processes (own databases, consumer groups, Faust apps and
metrics ports) and its own Prometheus (the Debian package's binary, installed by `make setup`)
with a configuration pointing at those ports. Do not run it while a `make run` stack shares the
broker: each stack reads every record of its input topics, so the other stack's catalog would
answer this stack's orders.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from shopstream_platform.settings import KafkaSettings
from shopstream_platform.testing import ServiceProcess, free_port
from shopstream_simulator import ServicesUnreachable, SimConfig, Targets, simulate
from shopstream_simulator.main import reconcile_run

MODULES = {
    "catalog": ("shopstream_catalog", "SHOPSTREAM_CATALOG_"),
    "commerce": ("shopstream_commerce", "SHOPSTREAM_COMMERCE_"),
    "ads": ("shopstream_ads", "SHOPSTREAM_ADS_"),
    "creator-score": ("shopstream_creator_score", "SHOPSTREAM_CREATOR_SCORE_"),
}


# The day lasts a minute: the sandbox carrier's pick-up and transit take seconds, as `make run`
# sets them (deploy/run.sh).
SHIP_WITHIN_S = 20
FAST_CARRIER = {
    "CARRIER_PICKUP_S": "2",
    "CARRIER_TRANSIT_S": "6",
    "CARRIER_PROMISE_S": "10",
    "CARRIER_LATE_BY_S": "5",
    "CARRIER_LOST_SHARE": "0.02",
    "CARRIER_LATE_SHARE": "0.08",
    "DELIVERY_PROMISE_S": "30",
    # An order's ship-by (payment + this), as `make run` sets it: the planted late shipper holds
    # orders past it within the day.
    "SHIP_WITHIN_S": str(SHIP_WITHIN_S),
}


@pytest.fixture
async def stack(
    kafka_settings: KafkaSettings,
    tmp_path: Path,
    service_process: Callable[[str, str, dict[str, str]], ServiceProcess],
) -> AsyncIterator[Targets]:
    tag = uuid.uuid4().hex[:8]
    grpc: dict[str, str] = {}
    metrics: dict[str, str] = {}
    processes = []
    for name, (module, prefix) in MODULES.items():
        port = free_port()
        process = service_process(
            module,
            prefix,
            {
                "KAFKA__BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
                "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / name}.db",
                # Own consumer groups and Faust apps: this stack reads every record afresh.
                "SERVICE_NAME": f"{name}-e2e-{tag}",
                "FAUST_APP_ID": f"{name}-e2e-{tag}",
                # The store `make run` uses (RocksDB), not the tests' memory store.
                "DATA_DIR": str(tmp_path / f"faust-{name}"),
                "METRICS_PORT": str(port),
                "CONSUMER__POLL_TIMEOUT_S": "0.05",
                "OUTBOX_POLL_INTERVAL_S": "0.02",
                **(FAST_CARRIER if name == "commerce" else {}),
            },
        )
        processes.append(process)
        metrics[name] = f"127.0.0.1:{port}"
    await asyncio.gather(*(p.start() for p in processes))
    for name, process in zip(MODULES, processes, strict=True):
        grpc[name] = f"127.0.0.1:{process.port}"
    yield Targets(grpc=grpc, metrics=metrics)
    for process in processes:
        assert process.stop() == 0


PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


@pytest.fixture
def prometheus(stack: Targets, tmp_path: Path) -> Iterator[str]:
    """A real Prometheus scraping the four services every second; yields its base URL."""
    port = free_port()
    config = tmp_path / "prometheus.yml"
    jobs = "".join(
        f"  - job_name: {name}\n    static_configs:\n      - targets: ['{address}']\n"
        for name, address in stack.metrics.items()
    )
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n" + jobs
    )
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "prometheus.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"Prometheus did not start: {tmp_path / 'prometheus.log'}"
                    ) from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def query(url: str, promql: str) -> float | None:
    """The value of an instant query that returns one series (None when it returns none)."""
    with urllib.request.urlopen(
        f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": promql}), timeout=10
    ) as answer:
        result = json.load(answer)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


# Counters each service must have moved during the day, as Prometheus scraped them.
NON_ZERO = {
    "catalog": [
        "shopstream_rpc_requests_total",
        "shopstream_catalog_reservations_total",
        "shopstream_catalog_listing_decisions_total",
        "shopstream_catalog_suppressions_total",
    ],
    "commerce": [
        "shopstream_rpc_requests_total",
        "shopstream_commerce_gmv_minor_total",
        "shopstream_commerce_refunds_total",
        "shopstream_commerce_package_outcomes_total",
        "shopstream_events_consumed_total",
    ],
    "ads": [
        "shopstream_rpc_requests_total",
        "shopstream_ads_impressions_total",
        "shopstream_ads_clicks_total",
        "shopstream_ads_flagged_clicks_total",
        "shopstream_ads_spend_minor_total",
        "shopstream_ads_auctions_total",
    ],
    "creator-score": [
        "shopstream_creator_score_inputs_total",
        "shopstream_creator_score_updates_total",
        "shopstream_events_consumed_total",
    ],
}


@pytest.mark.e2e
@pytest.mark.timeout(900)
async def test_a_simulated_day_reconciles_and_its_fraud_is_caught(
    stack: Targets, prometheus: str, kafka_settings: KafkaSettings
) -> None:
    config = SimConfig(
        seed=7,
        rate=2.0,
        duration_s=60.0,
        targets=stack,
        kafka=kafka_settings,
        drain_s=60.0,
        verify_s=60.0,
        ship_within_s=float(SHIP_WITHIN_S),
    )
    # `shopstream topics tail` on the orders topic while the day runs: the CLI a person would use.
    command = ["topics", "tail", "commerce.orders.v1", "--max", "5", "--json"]
    tail = subprocess.Popen(
        [sys.executable, "-m", "shopstream_cli", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SHOPSTREAM_KAFKA__BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers},
    )
    try:
        summary = await simulate(config)
        tailed, errors = tail.communicate(timeout=60)
    finally:
        tail.kill()
    records = [json.loads(line) for line in tailed.splitlines() if line.strip()]
    assert len(records) == 5, errors
    for record in records:
        assert record["ce_type"].startswith("shopstream.commerce.v1.Order"), record
        assert isinstance(record["value"], dict) and record["value"]["order"]["order_id"], record

    assert not summary.interrupted and summary.run_id.startswith("s7")
    assert summary.services == {s: "SERVING" for s in MODULES}
    assert summary.orders["placed"] >= 40
    assert summary.orders["paid"] >= 0.8 * summary.orders["placed"]
    assert summary.orders["refunds_approved"] >= 5
    # The simulator's money equals what commerce counted over the run.
    usd = summary.money["USD"]
    assert summary.observed["commerce.gmv_minor.USD"] == usd["paid_minor"]
    assert summary.observed["commerce.refunded_minor.USD"] == usd["refunded_minor"]
    assert summary.traffic["impressions"] > 0 and summary.traffic["clicks"] > 0
    assert summary.traffic["bot_clicks"] >= 200
    assert summary.traffic["profiles"] > 0 and summary.traffic["content_stats"] > 0
    assert summary.traffic.get("delivery_failed", 0) == 0
    # Orders ship through packages in each way sellers ship, and every parcel reached an end.
    f = summary.fulfilment
    for way in ("shipped_by_platform", "shipped_sandbox", "shipped_own_carrier"):
        assert f.get(way, 0) > 0, (way, f)
    assert f["delivered_on_time"] > 0 and f.get("orders_still_on_the_way", 0) == 0, f
    assert 0 < f["inbound_received_units"] <= f["inbound_announced_units"], f
    # Every fraudster was caught by the service that should catch it.
    for fraud, verdict in summary.caught.items():
        assert verdict["caught"] is True, (fraud, verdict)
    assert set(summary.fraud["counterfeit_products"]) == {"C001", "C002", "C003"}

    # `shopstream reconcile` of this run, as `make run` prints it: every number the services
    # answer equals its recount from the topics. ads.order_value is left out while the ads
    # defect docs/reliability.md describes (two live credits for one order) stands.
    verdict, _ = await asyncio.to_thread(
        reconcile_run,
        kafka_settings,
        config.auth,
        stack.grpc,
        summary.run_id,
        datetime.fromisoformat(summary.started_at),
    )
    compared = {c.name: c.compared for c in verdict.checks}
    assert compared["orders.state"] >= 40 and compared["stock.reserved"] > 0, compared
    assert not verdict.unanswered, [(c.name, c.skipped) for c in verdict.unanswered]
    wrong = [m.to_dict() for m in verdict.mismatches if m.check != "ads.order_value"]
    assert wrong == [], wrong

    # Prometheus scraped all four services; after a few more scrapes its numbers are final.
    await asyncio.sleep(4)
    for job in MODULES:
        assert query(prometheus, f'up{{job="{job}"}}') == 1.0, job
        for metric in NON_ZERO[job]:
            value = await asyncio.to_thread(query, prometheus, f'sum({metric}{{job="{job}"}})')
            assert value is not None and value > 0, (job, metric, value)
    gmv = await asyncio.to_thread(
        query,
        prometheus,
        'sum(shopstream_commerce_gmv_minor_total{currency="USD"})'
        ' - sum(shopstream_commerce_refunded_minor_total{currency="USD"})',
    )
    assert gmv == usd["paid_minor"] - usd["refunded_minor"]


async def test_unreachable_services_fail_fast_with_a_clear_message() -> None:
    nowhere = {name: f"127.0.0.1:{free_port()}" for name in MODULES}
    config = SimConfig(targets=Targets(grpc=nowhere, metrics=nowhere), connect_wait_s=0.5)
    with pytest.raises(ServicesUnreachable, match=r"catalog at 127\.0\.0\.1:\d+ \(UNREACHABLE\)"):
        await simulate(config)
