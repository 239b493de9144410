"""What operators watch must keep matching what the services export: the alert rules pass
promtool's checks and unit tests, the dashboard in the chart is the generated one, and
every metric the dashboard or the alerts query is one a service really exposes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.processes import REPO_ROOT

ALERTS = REPO_ROOT / "helm" / "flokraft" / "files" / "alerts.yaml"
ALERT_TESTS = Path(__file__).with_name("alerts.test.yaml")
DASHBOARDS = sorted((REPO_ROOT / "helm" / "flokraft" / "dashboards").glob("*.json"))

SERIES_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count"),
}
# Series Prometheus itself adds to every target.
SCRAPE_SERIES = {"up"}
PROMQL_WORDS = {
    "sum", "by", "rate", "increase", "histogram_quantile", "max", "min", "avg", "absent",
    "without", "on", "ignoring", "count", "and", "or", "unless", "le", "bool",
}  # fmt: skip


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.fail("promtool is missing: install Debian's `prometheus` package (.ci/run does)")
    return found


def test_alert_rules_are_valid() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_unit_tests_pass() -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", ALERT_TESTS.name],
        capture_output=True,
        text=True,
        cwd=ALERT_TESTS.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_chart_dashboard_is_the_generated_one() -> None:
    result = subprocess.run(
        ["python", "-m", "flokraft_observability", "--check"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr


def _queried_metrics() -> set[str]:
    exprs = [
        rule["expr"]
        for group in yaml.safe_load(ALERTS.read_text())["groups"]
        for rule in group["rules"]
    ]
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            exprs.extend(t["expr"] for t in panel.get("targets") or [])
    names: set[str] = set()
    for expr in exprs:
        # Drop strings, then label matchers, ranges and grouping clauses; what is left
        # besides PromQL words are metric names.
        bare = re.sub(r"\"[^\"]*\"", " ", expr)
        bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\b(by|without|on|ignoring)\s*\([^)]*\)", " ", bare)
        names |= {w for w in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare) if w not in PROMQL_WORDS}
    return names


def _exported_series() -> set[str]:
    import analyzer.metrics  # noqa: F401  (registers the worker's metrics)
    import rerun_api.outbox  # noqa: F401  (registers the reconciler's metrics)
    from query_api.main import app

    async def scrape() -> str:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            await client.get("/no-such-route")  # makes the HTTP metrics appear
            return (await client.get("/metrics")).text

    import asyncio

    text = asyncio.run(scrape())
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        # A labelled metric with no observation yet has no samples: name its series by type.
        names |= {f"{family.name}{suffix}" for suffix in SERIES_SUFFIXES.get(family.type, ("",))}
        names |= {sample.name for sample in family.samples}
    return names


def test_every_queried_metric_is_exported() -> None:
    queried = _queried_metrics()
    assert queried, "no metric found in the dashboard or the alerts"
    missing = queried - _exported_series() - SCRAPE_SERIES
    assert not missing, f"queried but exported by no service: {sorted(missing)}"
