"""What operators watch must keep matching what the services export and what the chart
renders: the alert rules pass promtool's checks and unit tests (each alert made to fire
and kept quiet), every alert has a runbook section, the dashboards in the chart are the
generated ones with the variables and units on-call needs, every scrape path renders
objects valid against the published CRD schemas with `namespace`, `pod` and `container`
labels, and every metric queried is one a service exports or an external one we name."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from flokraft_devstack.settings import REPO_ROOT
from flokraft_observability.local import rule_file_text
from flokraft_observability.queries import EXTERNAL_METRICS, metric_names, substitute
from tests.deploy.crd_schemas import crd_errors
from tests.observability.chart import CHART, helm, render, rule_groups, write_rule_file

ALERTS = REPO_ROOT / "helm" / "flokraft" / "files" / "alerts.yaml"
ALERT_TESTS = Path(__file__).with_name("alerts.test.yaml")
RUNBOOKS = REPO_ROOT / "docs" / "runbooks.md"
DASHBOARD_DIR = REPO_ROOT / "helm" / "flokraft" / "dashboards"
DASHBOARDS = sorted(DASHBOARD_DIR.glob("*.json"))
SERVICES = ("query-api", "rerun-api", "analyzer")

SERIES_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count"),
}
# Series Prometheus itself adds to every target.
SCRAPE_SERIES = {"up"}


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.fail("promtool is missing: install Debian's `prometheus` package (.ci/run does)")
    return found


def alert_rules() -> list[dict[str, Any]]:
    return [
        rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
    ]


def dashboard_exprs() -> list[str]:
    return [
        target["expr"]
        for path in DASHBOARDS
        for panel in json.loads(path.read_text())["panels"]
        for target in panel.get("targets") or []
    ]


def test_rendered_alert_rules_are_valid(tmp_path: Path) -> None:
    rules = write_rule_file(tmp_path / "alerts.yaml")
    result = subprocess.run(
        [promtool(), "check", "rules", str(rules)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_and_stays_quiet_in_promtool_unit_tests(tmp_path: Path) -> None:
    write_rule_file(tmp_path / "alerts.rendered.yaml")
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    result = subprocess.run(
        [promtool(), "test", "rules", ALERT_TESTS.name],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    cases = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in cases:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - firing == set(), "alerts never made to fire"
    assert names - quiet == set(), "alerts never shown quiet"


def test_every_alert_has_summary_description_and_a_runbook_section() -> None:
    headings = set(re.findall(r"^## (\w+)$", RUNBOOKS.read_text(), flags=re.MULTILINE))
    for rule in alert_rules():
        annotations = rule["annotations"]
        assert annotations.get("summary"), rule["alert"]
        assert annotations.get("description"), rule["alert"]
        assert annotations["runbook_url"] == f"__RUNBOOKS__#{rule['alert'].lower()}"
        assert rule["alert"] in headings, f"docs/runbooks.md has no section {rule['alert']}"


def _runbook_urls(*sets: str) -> dict[str, str]:
    docs = render("flokraft", *sets)
    return {
        rule["alert"]: rule["annotations"]["runbook_url"]
        for doc in docs
        if doc["kind"] in {"Rules", "GlobalRules", "PrometheusRule"}
        for group in doc["spec"]["groups"]
        for rule in group["rules"]
    }


@pytest.mark.parametrize("kind", ["gmp", "prometheus-operator"])
def test_every_runbook_url_is_absolute_and_follows_runbooks_base_url(kind: str) -> None:
    base = "https://git.example.org/ops/flokraft/blob/v1.4.0/docs/runbooks.md"
    urls = _runbook_urls(
        f"observability.rules.kind={kind}", f"observability.runbooksBaseUrl={base}"
    )
    assert set(urls) == {rule["alert"] for rule in alert_rules()}
    for alert, url in urls.items():
        assert url == f"{base}#{alert.lower()}"
    # The default and the production values give absolute links too.
    default = _runbook_urls()
    assert all(url.startswith("https://") for url in default.values()), default
    prod_base = yaml.safe_load((REPO_ROOT / "helm/flokraft/values-prod.yaml").read_text())[
        "observability"
    ]["runbooksBaseUrl"]
    assert prod_base.startswith("https://")
    assert "#" not in prod_base


@pytest.mark.parametrize("base", ["docs/runbooks.md", "/docs/runbooks.md", "https://x/r.md#a"])
def test_a_relative_runbooks_base_url_is_refused(base: str) -> None:
    with pytest.raises(subprocess.CalledProcessError) as failure:
        render("flokraft", f"observability.runbooksBaseUrl={base}")
    assert "runbooksBaseUrl" in failure.value.stderr


def test_local_prometheus_loads_the_rules_the_chart_renders() -> None:
    base = "https://flokraft.example/docs/runbooks.md"
    local = yaml.safe_load(rule_file_text("dev-ns", base))["groups"]
    assert local == rule_groups("dev-ns")


def _is_cloud_monitoring(expr: str) -> bool:
    return any("_googleapis_com:" in name for name in metric_names(expr))


def test_gmp_evaluates_cloud_monitoring_rules_in_global_rules(tmp_path: Path) -> None:
    """A namespaced Rules object sees only its namespace's series; Cloud Monitoring's
    Pub/Sub metrics have none, so their rules must be in a GlobalRules object."""
    docs = render("prod-eu")
    (rules,) = [d for d in docs if d["kind"] == "Rules"]
    (global_rules,) = [d for d in docs if d["kind"] == "GlobalRules"]
    _valid(rules, "monitoring.googleapis.com", "rules")
    _valid(global_rules, "monitoring.googleapis.com", "globalrules")
    assert rules["metadata"]["namespace"] == "prod-eu"
    assert "namespace" not in global_rules["metadata"]  # cluster-scoped
    assert global_rules["metadata"]["name"] == "flokraft-prod-eu-cloud-monitoring"

    local = [r for g in rules["spec"]["groups"] for r in g["rules"]]
    cloud = [r for g in global_rules["spec"]["groups"] for r in g["rules"]]
    assert not [r["alert"] for r in local if _is_cloud_monitoring(r["expr"])]
    assert cloud
    assert all(_is_cloud_monitoring(r["expr"]) for r in cloud)
    assert {r["alert"] for r in cloud} >= {"FlokraftJobBacklogOld", "FlokraftDeadLetterBacklog"}
    # Together they are every rule, exactly as the PrometheusRule holds them.
    assert sorted(rules["spec"]["groups"] + global_rules["spec"]["groups"], key=str) == sorted(
        rule_groups("prod-eu"), key=str
    )
    # What GMP's rule evaluator loads passes promtool.
    path = tmp_path / "global.yaml"
    path.write_text(yaml.safe_dump({"groups": global_rules["spec"]["groups"]}))
    result = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_group_mixing_cloud_monitoring_and_own_series_is_refused(tmp_path: Path) -> None:
    chart = tmp_path / "flokraft"
    shutil.copytree(CHART, chart)
    alerts = chart / "files" / "alerts.yaml"
    text = alerts.read_text()
    # Move the analyzer-down rule into the Pub/Sub group.
    groups = yaml.safe_load(text)["groups"]
    by_name = {g["name"]: g for g in groups}
    moved = by_name["flokraft-analyzer"]["rules"].pop()
    by_name["flokraft-pubsub"]["rules"].append(moved)
    alerts.write_text(yaml.safe_dump({"groups": groups}))
    result = subprocess.run(
        [helm(), "template", "flokraft", str(chart), "--show-only", "templates/observability.yaml"],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "mixes rules over Cloud Monitoring metrics" in result.stderr


def test_absent_and_kube_state_rules_are_scoped_to_the_release_namespace() -> None:
    for group in rule_groups("prod-eu"):
        for rule in group["rules"]:
            expr = rule["expr"]
            assert "__NAMESPACE__" not in expr
            for call in re.findall(r"absent\((\w+\{[^}]*\})", expr):
                assert 'namespace="prod-eu"' in call, (rule["alert"], call)
            for selector in re.findall(r"kube_\w+\{[^}]*\}", expr):
                assert 'namespace="prod-eu"' in selector, (rule["alert"], selector)


def test_chart_dashboards_are_the_generated_ones() -> None:
    result = subprocess.run(
        ["python", "-m", "flokraft_observability", "--check"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert {p.stem for p in DASHBOARDS} == {"flokraft-overview", "flokraft-analyzer"}


def _nulls(value: Any, path: str = "") -> list[str]:
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in _nulls(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [n for i, v in enumerate(value) for n in _nulls(v, f"{path}[{i}]")]
    return []


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboard_has_variables_units_and_no_nulls(path: Path) -> None:
    model = json.loads(path.read_text())
    assert 36 <= model["schemaVersion"] <= 41
    # Only the base threshold step's value is null (Grafana's -Infinity).
    assert all(re.search(r"\.thresholds\.steps\[0\]\.value$", n) for n in _nulls(model))
    variables = {v["name"]: v for v in model["templating"]["list"]}
    assert set(variables) == {
        "datasource",
        "cluster",
        "namespace",
        "job_subscription",
        "dead_letter_subscription",
    }
    # Hidden constants the chart fills from files/pubsub-topology.yaml.
    assert variables["job_subscription"]["type"] == "constant"
    assert variables["job_subscription"]["query"] == "__JOB_SUBSCRIPTION__"
    assert variables["dead_letter_subscription"]["query"] == "__DEAD_LETTER_SUBSCRIPTION__"
    assert variables["cluster"]["includeAll"]
    assert variables["cluster"]["allValue"] == ".*"
    assert not variables["namespace"].get("multi"), "dev and prod must not add up"
    panels = [p for p in model["panels"] if p["type"] != "row"]
    assert panels
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}"
        unit = panel["fieldConfig"]["defaults"]["unit"]
        exprs = [t["expr"] for t in panel["targets"]]
        for expr in exprs:
            # Our series and kube-state-metrics/cAdvisor ones are scoped to one namespace;
            # Pub/Sub's are per subscription, named by the chart's variables only.
            assert '"$namespace"' in expr or "subscription_id" in expr, expr
            for subscription in re.findall(r'subscription_id=~?"([^"]*)"', expr):
                assert set(subscription.split("|")) <= {
                    "$job_subscription",
                    "$dead_letter_subscription",
                }, expr
        if panel["type"] == "stat":
            steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
            assert len(steps) >= 2, f"{panel['title']}: a stat panel needs thresholds"
        if all(
            e.startswith(("sum by", "sum(rate")) and "rate(" in e and " / " not in e for e in exprs
        ):
            assert unit in {"reqps", "ops"}, f"{panel['title']}: a rate is per second"


def test_dashboard_configmaps_carry_sidecar_label_folder_and_release_uids() -> None:
    docs = render("flokraft", "observability.dashboards.uidSuffix=-prod")
    maps = [d for d in docs if d["kind"] == "ConfigMap"]
    assert len(maps) == len(DASHBOARDS)
    for config_map in maps:
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config_map["metadata"]["annotations"]["grafana_folder"] == "flokraft"
        ((name, encoded),) = config_map["binaryData"].items()
        model = json.loads(base64.b64decode(encoded))
        assert model["uid"] == f"{Path(name).stem}-prod"
        assert model["panels"] == json.loads((DASHBOARD_DIR / name).read_text())["panels"]
        constants = {
            v["name"]: v["query"] for v in model["templating"]["list"] if v["type"] == "constant"
        }
        assert constants == {
            "job_subscription": "analysis-jobs-analyzer",
            "dead_letter_subscription": "analysis-jobs-dead-letter-analyzer",
        }


def _valid(doc: dict[str, Any], group: str, kind: str) -> None:
    """Valid against the CRD schema its project publishes (vendored by tests/deploy)."""
    assert doc["apiVersion"] == f"{group}/v1"
    assert doc["kind"].lower() == kind
    assert crd_errors(doc) == []


def test_gmp_scrape_renders_a_pod_monitoring_per_service_on_the_named_port() -> None:
    docs = [d for d in render() if d["kind"] == "PodMonitoring"]
    assert sorted(
        d["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] for d in docs
    ) == sorted(SERVICES)
    for doc in docs:
        _valid(doc, "monitoring.googleapis.com", "podmonitoring")
        # GMP adds `container` only for a port referenced by name; `pod` and `container`
        # are its default target labels, so none is overridden.
        assert [e["port"] for e in doc["spec"]["endpoints"]] == ["http"]
        assert "targetLabels" not in doc["spec"]


def test_prometheus_operator_scrape_renders_pod_monitors_the_default_selectors_pick() -> None:
    docs = render("flokraft", "observability.scrape=prometheus-operator")
    monitors = [d for d in docs if d["kind"] == "PodMonitor"]
    assert len(monitors) == len(SERVICES)
    assert not [d for d in docs if d["kind"] == "PodMonitoring"]
    for doc in monitors:
        _valid(doc, "monitoring.coreos.com", "podmonitor")
        assert doc["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        assert doc["spec"]["namespaceSelector"]["matchNames"] == ["flokraft"]
        (endpoint,) = doc["spec"]["podMetricsEndpoints"]
        assert endpoint["port"] == "http"
        assert endpoint["path"] == "/metrics"
        targets = {r["targetLabel"]: r["sourceLabels"] for r in endpoint["relabelings"]}
        assert targets == {
            "namespace": ["__meta_kubernetes_namespace"],
            "pod": ["__meta_kubernetes_pod_name"],
            "container": ["__meta_kubernetes_pod_container_name"],
        }


@pytest.mark.parametrize("scrape", ["annotations", "none"])
def test_other_scrape_modes_render_no_monitor(scrape: str) -> None:
    kinds = {d["kind"] for d in render("flokraft", f"observability.scrape={scrape}")}
    assert not kinds & {"PodMonitoring", "PodMonitor", "ServiceMonitor"}


def test_annotation_scraping_without_annotations_is_refused() -> None:
    with pytest.raises(subprocess.CalledProcessError) as failure:
        render("flokraft", "observability.scrape=annotations", "metrics.annotations=false")
    assert "metrics.annotations" in failure.value.stderr


def test_an_unknown_scrape_mode_is_refused_by_the_schema() -> None:
    with pytest.raises(subprocess.CalledProcessError) as failure:
        render("flokraft", "observability.scrape=servicemonitor")
    assert "scrape" in failure.value.stderr


@pytest.mark.parametrize(
    ("kind", "group", "schema"),
    [
        ("gmp", "monitoring.googleapis.com", "rules"),
        ("prometheus-operator", "monitoring.coreos.com", "prometheusrule"),
    ],
)
def test_rule_objects_are_valid_against_the_published_crds(
    kind: str, group: str, schema: str
) -> None:
    docs = render("flokraft", f"observability.rules.kind={kind}")
    (rules,) = [d for d in docs if d["kind"] in {"Rules", "PrometheusRule"}]
    _valid(rules, group, schema)


def queried_metrics() -> set[str]:
    exprs = [rule["expr"] for rule in alert_rules()] + dashboard_exprs()
    return {name for expr in exprs for name in metric_names(expr)}


def _exported_series() -> set[str]:
    import analyzer.metrics  # noqa: F401  (registers the worker's metrics)
    import rerun_api.outbox  # registers the reconciler's metrics
    import rerun_api.sweeper  # noqa: F401  (registers the sweeper's metrics)
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


def test_every_queried_metric_is_exported_or_named_external() -> None:
    queried = queried_metrics()
    assert queried, "no metric found in the dashboards or the alerts"
    missing = queried - _exported_series() - SCRAPE_SERIES - EXTERNAL_METRICS
    assert not missing, f"queried but exported by no service: {sorted(missing)}"
    assert queried >= EXTERNAL_METRICS, "an external metric listed here is no longer queried"


def _overview_target(title: str, legend_suffix: str) -> str:
    model = json.loads((DASHBOARD_DIR / "flokraft-overview.json").read_text())
    (panel,) = [p for p in model["panels"] if p["title"] == title]
    (expr,) = [t["expr"] for t in panel["targets"] if t["legendFormat"].endswith(legend_suffix)]
    return str(expr)


def test_oom_kills_are_counted_per_pod_within_the_time_range(tmp_path: Path) -> None:
    """The overview's OOM count, evaluated by promtool over kube-state-metrics series: a pod
    OOM-killed twice within the last hour counts 2; one killed 3 hours ago, whose last
    reason still says OOMKilled, counts 0; a restart for another reason counts 0."""
    title = "Restarts and OOM kills per pod (in the time range)"
    expr = substitute(_overview_target(title, "OOM kills"), "flokraft", time_range="1h")
    restarts = substitute(_overview_target(title, "restarts"), "flokraft", time_range="1h")
    ksm = 'namespace="flokraft", container="query-api"'
    restarts_series = "kube_pod_container_status_restarts_total"
    reason_series = "kube_pod_container_status_last_terminated_reason"
    cases = {
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    # Pod a: OOM-killed at 3h10m and 3h40m (of 4h).
                    {"series": f'{restarts_series}{{{ksm}, pod="a"}}', "values": "0x190 1x30 2x20"},
                    {
                        "series": f'{reason_series}{{{ksm}, pod="a", reason="OOMKilled"}}',
                        "values": "0x190 1x50",
                    },
                    # Pod b: OOM-killed at 50m; its reason stays set, no restart since.
                    {"series": f'{restarts_series}{{{ksm}, pod="b"}}', "values": "0x50 1x190"},
                    {
                        "series": f'{reason_series}{{{ksm}, pod="b", reason="OOMKilled"}}',
                        "values": "0x50 1x190",
                    },
                    # Pod c: restarted at 3h20m after an error, not an OOM kill.
                    {"series": f'{restarts_series}{{{ksm}, pod="c"}}', "values": "0x200 1x40"},
                    {
                        "series": f'{reason_series}{{{ksm}, pod="c", reason="OOMKilled"}}',
                        "values": "0x240",
                    },
                ],
                "promql_expr_test": [
                    {
                        "expr": f"round({expr})",
                        "eval_time": "4h",
                        "exp_samples": [
                            {"labels": '{pod="a"}', "value": 2},
                            {"labels": '{pod="b"}', "value": 0},
                            {"labels": '{pod="c"}', "value": 0},
                        ],
                    },
                    {
                        "expr": f"round({restarts})",
                        "eval_time": "4h",
                        "exp_samples": [
                            {"labels": '{pod="a"}', "value": 2},
                            {"labels": '{pod="b"}', "value": 0},
                            {"labels": '{pod="c"}', "value": 1},
                        ],
                    },
                ],
            }
        ],
    }
    (tmp_path / "none.yaml").write_text("groups: []\n")
    (tmp_path / "queries.test.yaml").write_text(
        yaml.safe_dump({"rule_files": ["none.yaml"], "evaluation_interval": "1m", **cases})
    )
    result = subprocess.run(
        [promtool(), "test", "rules", "queries.test.yaml"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
