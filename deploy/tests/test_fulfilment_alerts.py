"""The delivery-quality alerts (issue 20): promtool accepts the rules and its rule tests fire
them exactly where they should (deploy/tests/prometheus/fulfilment_alerts.test.yml), and their
thresholds are catalog's FAIR lines for a seller's late and lost parcels, as the rules say."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml
from deploy_support import REPO

from shopstream_catalog.settings import QualityThresholds

RULES = REPO / "deploy" / "prometheus" / "rules" / "shopstream.yml"
RULE_TESTS = REPO / "deploy" / "tests" / "prometheus" / "fulfilment_alerts.test.yml"
PROMTOOL = shutil.which("promtool")


def _alerts() -> dict[str, dict[str, object]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    group = next(g for g in groups if g["name"] == "shopstream.fulfilment")
    return {rule["alert"]: rule for rule in group["rules"]}


def test_the_thresholds_are_catalogs_fair_lines() -> None:
    t = QualityThresholds()
    alerts = _alerts()
    assert set(alerts) == {"OnTimeDeliveryLow", "LostParcelRateHigh"}
    on_time = " ".join(str(alerts["OnTimeDeliveryLow"]["expr"]).split())
    lost = " ".join(str(alerts["LostParcelRateHigh"]["expr"]).split())
    assert f") < {1 - t.fair_late_delivery_rate:.2f}" in on_time
    assert f"> {t.fair_lost_parcel_rate:.2f}" in lost
    for rule in alerts.values():
        assert "shopstream_commerce_package_outcomes_total" in str(rule["expr"])
        assert rule["for"] == "10m"


@pytest.mark.skipif(PROMTOOL is None, reason="promtool (Debian prometheus) missing")
def test_promtool_checks_the_rules_and_fires_them_where_expected() -> None:
    assert PROMTOOL is not None
    for args in (["check", "rules", str(RULES)], ["test", "rules", str(RULE_TESTS)]):
        result = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
