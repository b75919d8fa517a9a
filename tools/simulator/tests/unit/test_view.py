"""Scraped metrics become the view's numbers; the live view and the progress line render."""

from __future__ import annotations

from rich.console import Console

from shopstream_simulator.config import SimConfig
from shopstream_simulator.dashboard import money, progress_line, render
from shopstream_simulator.ledger import Ledger
from shopstream_simulator.monitor import CampaignRow, CreatorRow, Snapshot, Telemetry
from shopstream_simulator.scrape import parse

BEFORE = """# HELP shopstream_commerce_gmv_minor_total Paid order value
# TYPE shopstream_commerce_gmv_minor_total counter
shopstream_commerce_gmv_minor_total{currency="USD"} 1000.0
shopstream_ads_flagged_clicks_total{reason="device_burst"} 5.0
shopstream_consumer_lag_records{service="commerce",topic="a",partition="0",group="g"} 3.0
shopstream_consumer_lag_records{service="commerce",topic="a",partition="1",group="g"} 4.0
"""
AFTER = """# TYPE shopstream_commerce_gmv_minor_total counter
shopstream_commerce_gmv_minor_total{currency="USD"} 4500.0
shopstream_commerce_gmv_minor_total{currency="GBP"} 70.0
shopstream_ads_flagged_clicks_total{reason="device_burst"} 125.0
shopstream_ads_flagged_clicks_total{reason="no_impression"} 2.0
shopstream_consumer_lag_records{service="commerce",topic="a",partition="0",group="g"} 1.0
"""


def test_scrapes_parse_into_totals_and_splits() -> None:
    samples = parse(BEFORE)
    assert samples.total("shopstream_consumer_lag_records") == 7.0
    assert samples.total("shopstream_commerce_gmv_minor_total", currency="USD") == 1000.0
    assert samples.by("shopstream_ads_flagged_clicks_total", "reason") == {"device_burst": 5.0}


def test_the_snapshot_reports_changes_over_the_run() -> None:
    snap = Snapshot(
        metrics={"commerce": parse(AFTER), "ads": parse(AFTER)},
        baseline={"commerce": parse(BEFORE), "ads": parse(BEFORE)},
    )
    assert snap.delta("commerce", "shopstream_commerce_gmv_minor_total", currency="USD") == 3500.0
    assert snap.delta_by("ads", "shopstream_ads_flagged_clicks_total", "reason") == {
        "device_burst": 120.0,
        "no_impression": 2.0,
    }
    assert snap.gauge("commerce", "shopstream_consumer_lag_records") == 1.0
    observed = snap.observed()
    assert observed["commerce.gmv_minor.USD"] == 3500.0
    assert observed["commerce.gmv_minor.GBP"] == 70.0
    assert observed["ads.flagged_clicks.device_burst"] == 120.0
    assert snap.delta("catalog", "anything") is None


def test_money_is_shown_in_major_units() -> None:
    assert money(123456, "USD") == "$1,234.56"
    assert money(5, "JPY") == "0.05 JPY"


def test_the_live_view_and_the_progress_line_render() -> None:
    ledger = Ledger()
    ledger.placed(3.0)
    ledger.paid("o1", "USD", 2_599, 3.0)
    ledger.traffic["bot_clicks"] = 130
    ledger.warn("ads is not serving")
    snap = Snapshot(
        metrics={"ads": parse(AFTER), "commerce": parse(AFTER)},
        baseline={"ads": parse(BEFORE), "commerce": parse(BEFORE)},
        top={"beauty": [CreatorRow("c1", "mia.glow1", 71.5, 6, 100.0, (), 90_000, 12_345, True)]},
        campaigns=[CampaignRow("k1", "Lumen — serum", 900, 40, 1_200, None, None, None)],
        fakes=[
            CreatorRow(
                "c9",
                "leo.fits",
                12.0,
                1,
                20.0,
                ("FOLLOWER_SPIKE_WITHOUT_ENGAGEMENT",),
                60_000,
                0,
                True,
            )
        ],
    )
    telemetry = Telemetry(
        config=SimConfig(),
        ledger=ledger,
        phase="simulating",
        run_id="s7",
        services={"catalog": "SERVING", "ads": "UNREACHABLE"},
        snapshot=snap,
    )
    console = Console(record=True, width=180)
    console.print(render(telemetry))
    text = console.export_text()
    for expected in (
        "orders & GMV per minute",
        "fraud watch",
        "top creators by category",
        "campaign ROAS",
        "platform",
        "mia.glow1",
        "device_burst 120",
        "FLAGGED",
        "$25.99",
        "ads is not serving",
    ):
        assert expected in text, expected
    line = progress_line(telemetry, 0.0)
    assert "orders 1 paid 1" in line and "bot 130" in line and "flagged 122" in line


def test_top_creators_show_the_category_standing_they_are_ranked_by() -> None:
    from shopstream.creators.v1 import creators_pb2
    from shopstream_simulator.monitor import _row

    creator = creators_pb2.Creator(creator_id="c2", display_name="zoe.skin", score=40.0, tier=3)
    creator.category_strengths.add(category_id="fashion", score=12.0, rank=9)
    creator.category_strengths.add(category_id="beauty", score=88.25, rank=1)
    row = _row(creator, True, "beauty")
    assert (row.standing, row.rank, row.score) == (88.25, 1, 40.0)
    assert _row(creator, True).standing is None

    # Ranked by standing: the overall scores (40.0 above 71.5) would look unsorted on their own.
    first = CreatorRow("c2", "zoe.skin", 40.0, 3, 90.0, (), 1_000, 500, True, 88.25, 1)
    second = CreatorRow("c1", "mia.glow1", 71.5, 6, 95.0, (), 90_000, 12_345, True, 61.0, 2)
    telemetry = Telemetry(
        config=SimConfig(),
        ledger=Ledger(),
        phase="simulating",
        run_id="s7",
        services={},
        snapshot=Snapshot(top={"beauty": [first, second]}),
    )
    console = Console(record=True, width=180)
    console.print(render(telemetry))
    lines = console.export_text().splitlines()
    header = next(line for line in lines if "in category" in line)
    zoe = next(line for line in lines if "zoe.skin" in line)
    mia = next(line for line in lines if "mia.glow1" in line)
    assert header.index("in category") < header.index("score")
    assert zoe.index("88.2") < zoe.index("40.0") and mia.index("61.0") < mia.index("71.5")
    assert lines.index(zoe) < lines.index(mia)
