"""The chart's PromQL as data: every dashboard query and alert expression, the metrics no
flokraft process exports, and the substitution of Grafana's variables for evaluating the
queries against a plain Prometheus (tests/observability, the pictures)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from flokraft_observability.local import ALERTS, REPO_ROOT
from flokraft_observability.names import Subscriptions, subscriptions

DASHBOARD_DIR = REPO_ROOT / "helm" / "flokraft" / "dashboards"

# Queried on purpose, exported by none of our processes: kube-state-metrics, cAdvisor (the
# kubelet) and Cloud Monitoring's Pub/Sub metrics under GKE managed Prometheus's names.
EXTERNAL_METRICS = frozenset(
    {
        "kube_deployment_spec_replicas",
        "kube_deployment_status_replicas_available",
        "kube_horizontalpodautoscaler_spec_max_replicas",
        "kube_horizontalpodautoscaler_status_current_replicas",
        "kube_horizontalpodautoscaler_status_desired_replicas",
        "kube_pod_container_resource_limits",
        "kube_pod_container_status_last_terminated_reason",
        "kube_pod_container_status_restarts_total",
        "kube_pod_container_status_waiting_reason",
        "container_memory_working_set_bytes",
        "pubsub_googleapis_com:subscription_num_undelivered_messages",
        "pubsub_googleapis_com:subscription_oldest_unacked_message_age",
    }
)
_WORDS = frozenset(
    {
        "sum", "by", "rate", "increase", "histogram_quantile", "max", "min", "avg", "absent",
        "without", "on", "ignoring", "count", "and", "or", "unless", "bool", "label_replace",
        "group_left", "group_right",
    }
)  # fmt: skip
# A label-matcher block; values may hold braces ("/analyses/{analysis_id}/rerun").
_MATCHERS = r'\{(?:[^{}"]|"[^"]*")*\}'
_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(" + _MATCHERS + ")")


@dataclass(frozen=True)
class Panel:
    dashboard: str
    title: str
    unit: str
    targets: tuple[tuple[str, str], ...]  # (expr, legend)
    grid: tuple[int, int, int, int]  # x, y, w, h
    kind: str = "timeseries"  # Grafana's panel type
    thresholds: tuple[tuple[float, str], ...] = ()  # (from value, colour); the base first
    instant: bool = False  # stat queries evaluated once over the whole range


def panels(path: Path) -> Iterator[Panel]:
    model: dict[str, Any] = json.loads(path.read_text())
    for panel in model["panels"]:
        if panel["type"] == "row":
            continue
        pos = panel["gridPos"]
        defaults = panel["fieldConfig"]["defaults"]
        steps = (defaults.get("thresholds") or {}).get("steps", [])
        yield Panel(
            dashboard=model["uid"],
            title=panel["title"],
            unit=defaults.get("unit", "short"),
            targets=tuple((t["expr"], t.get("legendFormat", "")) for t in panel["targets"]),
            grid=(pos["x"], pos["y"], pos["w"], pos["h"]),
            kind=panel["type"],
            thresholds=tuple(
                (float("-inf") if s.get("value") is None else float(s["value"]), s["color"])
                for s in steps
            ),
            instant=all(t.get("instant") for t in panel["targets"]),
        )


def dashboards() -> list[Path]:
    return sorted(DASHBOARD_DIR.glob("*.json"))


def alert_exprs() -> dict[str, str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression (regex-based, good for the chart's own)."""
    bare = re.sub(_MATCHERS, " ", expr)
    bare = re.sub(r"\"[^\"]*\"", " ", bare)
    bare = re.sub(r"\[[^\]]*\]|\b(by|without|on|ignoring)\s*\([^)]*\)", " ", bare)
    words = re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare)
    return {w for w in words if w not in _WORDS}


def selectors(expr: str) -> set[str]:
    """Every series selector of an expression: `name{matchers}` and bare names."""
    found = {f"{name}{matchers}" for name, matchers in _SELECTOR.findall(expr)}
    named = {s.split("{", 1)[0] for s in found}
    return found | (metric_names(expr) - named)


def is_external(expr: str) -> bool:
    return bool(metric_names(expr) & EXTERNAL_METRICS)


def substitute(
    expr: str,
    namespace: str,
    rate_interval: str = "30s",
    time_range: str = "1h",
    subs: Subscriptions | None = None,
) -> str:
    """Grafana's variables as a single-namespace, all-clusters view would set them, with
    the subscriptions the chart would write into the constant variables."""
    subs = subs or subscriptions()
    return (
        expr.replace("$__rate_interval", rate_interval)
        .replace("$__range", time_range)
        .replace("$namespace", namespace)
        .replace("$cluster", ".*")
        .replace("$job_subscription", subs.job)
        .replace("$dead_letter_subscription", subs.dead_letter)
    )
