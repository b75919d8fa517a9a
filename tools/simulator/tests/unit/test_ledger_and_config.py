"""The ledger's money and summary, ids, targets and the command line — no services needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shopstream_simulator.config import SimConfig, SimulatorSettings, Targets, kafka_override
from shopstream_simulator.ids import event_id, sub_rng
from shopstream_simulator.ledger import Ledger, Summary, fraud_dict
from shopstream_simulator.main import config_from, parser


def test_paid_money_is_counted_once_per_order_and_nets_refunds() -> None:
    ledger = Ledger()
    ledger.paid("ord-1", "USD", 1_000, 5.0)
    ledger.paid("ord-1", "USD", 1_000, 6.0)  # a retried PayOrder confirmed again
    ledger.paid("ord-2", "GBP", 250, 70.0)
    ledger.refunded("USD", 400)
    assert ledger.orders["paid"] == 2
    assert ledger.money() == {
        "GBP": {"paid_minor": 250, "refunded_minor": 0, "net_minor": 250},
        "USD": {"paid_minor": 1_000, "refunded_minor": 400, "net_minor": 600},
    }
    assert ledger.minutes[0].gmv_minor == 1_000 and ledger.minutes[1].paid == 1


def test_warnings_are_listed_once_and_bounded() -> None:
    ledger = Ledger()
    for i in range(150):
        ledger.warn("same")
        ledger.warn(f"other {i}")
    assert ledger.warnings.count("same") == 1
    assert len(ledger.warnings) == 100 and ledger.rpc_errors["warnings not listed"] == 51


def test_the_summary_is_written_as_json(tmp_path: Path) -> None:
    ledger = Ledger()
    ledger.fraud.bot_install_ids = ["inst-1"]
    summary = Summary(
        run_id="s1",
        seed=1,
        rate=2.0,
        unit="orders",
        duration_s=10.0,
        elapsed_s=11.0,
        started_at="t0",
        finished_at="t1",
        interrupted=False,
        services={},
        orders={"paid": 1},
        rejections={},
        money=ledger.money(),
        traffic={},
        fraud=fraud_dict(ledger.fraud),
        caught={},
        observed={},
        rpc_errors={},
        warnings=[],
    )
    path = tmp_path / "out" / "summary.json"
    summary.write(path)
    loaded = json.loads(path.read_text())
    assert loaded["fraud"]["bot_install_ids"] == ["inst-1"] and loaded["orders"] == {"paid": 1}


def test_event_ids_and_random_streams_are_deterministic() -> None:
    assert event_id("s7", "topic", "x") == event_id("s7", "topic", "x")
    assert event_id("s7", "topic", "x") != event_id("s7-2", "topic", "x")
    assert len(event_id("s7", "a")) == 32
    assert sub_rng(7, "a").random() == sub_rng(7, "a").random()
    assert sub_rng(7, "a").random() != sub_rng(7, "b").random()


def test_targets_default_to_the_local_stack_and_take_overrides() -> None:
    t = Targets()
    assert t.grpc["ads"] == "127.0.0.1:50053" and t.metrics["creator-score"] == "127.0.0.1:9104"
    t = t.with_override("ads=10.0.0.5:6000").with_override("ads-metrics=:7000")
    assert t.grpc["ads"] == "10.0.0.5:6000" and t.metrics["ads"] == "127.0.0.1:7000"
    assert kafka_override(["kafka=broker:9093"]) == "broker:9093"
    for bad in ("nowhere=1.2.3.4:5", "catalog", "catalog=host", "catalog=host:99999"):
        with pytest.raises(ValueError):
            Targets().with_override(bad)


def test_the_command_line_builds_the_config() -> None:
    args = parser().parse_args(
        [
            "--rate",
            "5",
            "--duration",
            "30",
            "--seed",
            "3",
            "--target",
            "kafka=k:1",
            "--target",
            "commerce=c:2",
            "--summary",
            "s.json",
            "--no-view",
        ]
    )
    config = config_from(args, SimulatorSettings())
    assert (config.rate, config.duration_s, config.seed) == (5.0, 30.0, 3)
    assert config.kafka.bootstrap_servers == "k:1"
    assert config.targets.grpc["commerce"] == "c:2"
    assert config.world.buyers == 1_500  # enough buyers that none clicks like a bot
    assert config.default_run_id == "s3"
    with pytest.raises(SystemExit):
        parser().parse_args(["--rate", "0"])


def test_default_config_is_the_local_dev_stack() -> None:
    config = SimConfig()
    assert config.unit == "orders" and config.targets.grpc["catalog"] == "127.0.0.1:50051"
