"""Dashboards and alert rules query only metrics the code defines: renaming a metric fails here."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from shopstream_platform.metrics import PlatformMetrics

ROOT = Path(__file__).resolve().parents[4]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
RULES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
# Series Prometheus itself writes for every scrape target.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
METRIC = re.compile(r"\b(shopstream_[a-zA-Z0-9_]+)\b")
PROMETHEUS_ONLY = re.compile(r"^\w*\(?(" + "|".join(sorted(PROMETHEUS_SERIES)) + r")\{")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
}


def service_metric_modules() -> list[str]:
    """`<package>.metrics` of every service that has one (services appear as they land)."""
    return sorted(
        f"{path.parent.name}.metrics" for path in (ROOT / "services").glob("*/src/*/metrics.py")
    )


def defined_metric_names() -> set[str]:
    """Every series name the code can expose: each metrics class registered on one registry."""
    registry = CollectorRegistry()
    PlatformMetrics("test", registry=registry)
    for module_name in service_metric_modules():
        module = importlib.import_module(module_name)
        for name, cls in vars(module).items():
            if name.endswith("Metrics") and isinstance(cls, type) and cls.__module__ == module_name:
                cls(registry)
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in SUFFIXES[family.type])
    return names


def dashboard_exprs(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) of every query, rows' nested panels and variables included."""
    found: list[tuple[str, str]] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                found.append((panel.get("title", "?"), target.get("expr", "")))
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            found.append((f"${variable['name']}", variable.get("definition", "")))
    return found


def rule_exprs() -> list[tuple[str, str]]:
    found = []
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                found.append((rule.get("alert") or rule["record"], rule["expr"]))
    return found


def test_every_service_with_metrics_is_covered() -> None:
    assert {"shopstream_catalog.metrics", "shopstream_commerce.metrics"} <= set(
        service_metric_modules()
    )
    names = defined_metric_names()
    assert "shopstream_rpc_requests_total" in names
    assert "shopstream_rpc_duration_seconds_bucket" in names
    assert "shopstream_commerce_gmv_minor_total" in names


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_a_grafana_dashboard(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] and dashboard["title"]
    assert dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]


def test_dashboards_exist() -> None:
    assert {p.name for p in DASHBOARDS} >= {"business.json", "operations.json"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_queries_only_defined_metrics(path: Path) -> None:
    defined = defined_metric_names()
    exprs = dashboard_exprs(json.loads(path.read_text()))
    assert exprs
    unknown = {
        (title, name)
        for title, expr in exprs
        for name in METRIC.findall(expr)
        if name not in defined
    }
    assert not unknown, f"metrics no code defines (renamed?): {sorted(unknown)}"
    bare = [
        (title, expr)
        for title, expr in exprs
        if not METRIC.search(expr) and not PROMETHEUS_ONLY.match(expr)
    ]
    assert not bare, f"queries that read no known series: {bare}"


def test_alert_rules_query_only_defined_metrics() -> None:
    defined = defined_metric_names() | PROMETHEUS_SERIES
    exprs = rule_exprs()
    assert exprs
    unknown = {(name, m) for name, expr in exprs for m in METRIC.findall(expr) if m not in defined}
    assert not unknown, f"metrics no code defines (renamed?): {sorted(unknown)}"


def test_prometheus_scrapes_every_service() -> None:
    from shopstream_cli.stack import SERVICES

    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    targets = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in config["scrape_configs"]
    }
    assert targets == {s.name: [f"127.0.0.1:{s.metrics_port}"] for s in SERVICES}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian prometheus) missing")
def test_promtool_accepts_config_and_rules() -> None:
    result = subprocess.run(
        ["promtool", "check", "config", str(PROMETHEUS_CONFIG)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
