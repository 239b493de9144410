"""Autoscaling follows the work: computed from the rendered HPAs and KEDA ScaledObjects with
the HorizontalPodAutoscaler algorithm.

The algorithm (kubernetes.io, "Horizontal Pod Autoscaling", algorithm details): per metric
desired = ceil(current x current_value / target) (for an External AverageValue target:
ceil(metric / target)), skipped within the 10 % tolerance; the HPA takes the largest
proposal and clamps it to [minReplicas, maxReplicas]. A KEDA ScaledObject becomes such an
HPA: each scaler trigger an External AverageValue metric, the cpu trigger a Resource one.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import CHART, VARIANTS, helm_template_cmd, kinds, load_docs

TOLERANCE = 0.1


def quantity(value: str | float) -> float:
    text = str(value)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


@dataclass(frozen=True)
class Metric:
    kind: str  # backlog (External), cpu (Resource utilisation), rps (Pods)
    target: float


@dataclass(frozen=True)
class Autoscaler:
    target: str
    min_replicas: int
    max_replicas: int
    metrics: tuple[Metric, ...]

    def desired(self, current: int, backlog: float = 0, cpu: float = 0, rps: float = 0) -> int:
        """Replicas the HPA wants with `current` pods at `cpu` % of their request each."""
        proposals = []
        for m in self.metrics:
            if m.kind == "backlog":
                ratio = backlog / (m.target * current)
            elif m.kind == "cpu":
                ratio = cpu / m.target
            else:
                ratio = rps / m.target
            within = abs(ratio - 1) <= TOLERANCE
            proposals.append(current if within else math.ceil(current * ratio))
        return min(self.max_replicas, max(self.min_replicas, *proposals))


def autoscalers(docs: list[dict[str, Any]]) -> dict[str, Autoscaler]:
    out = {}
    for hpa in kinds(docs, "HorizontalPodAutoscaler"):
        spec = hpa["spec"]
        metrics = []
        for m in spec["metrics"]:
            if m["type"] == "External":
                metrics.append(Metric("backlog", quantity(m["external"]["target"]["averageValue"])))
            elif m["type"] == "Resource":
                assert m["resource"]["name"] == "cpu", f"{hpa['metadata']['name']}: {m}"
                metrics.append(Metric("cpu", m["resource"]["target"]["averageUtilization"]))
            else:
                assert m["type"] == "Pods", m
                metrics.append(Metric("rps", quantity(m["pods"]["target"]["averageValue"])))
        out[spec["scaleTargetRef"]["name"]] = Autoscaler(
            spec["scaleTargetRef"]["name"], spec["minReplicas"], spec["maxReplicas"], tuple(metrics)
        )
    for scaled in kinds(docs, "ScaledObject"):
        spec = scaled["spec"]
        metrics = []
        for t in spec["triggers"]:
            meta = t["metadata"]
            if t["type"] == "cpu":
                assert t["metricType"] == "Utilization"
                metrics.append(Metric("cpu", quantity(meta["value"])))
            else:
                assert t.get("metricType", "AverageValue") == "AverageValue", t
                value = meta["value"] if t["type"] == "gcp-pubsub" else meta["threshold"]
                metrics.append(Metric("backlog", quantity(value)))
        name = spec["scaleTargetRef"]["name"]
        out[name] = Autoscaler(
            name, spec["minReplicaCount"], spec["maxReplicaCount"], tuple(metrics)
        )
    return out


def workers(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Deployments whose container sets MAX_CONCURRENT_JOBS: the worker role."""
    return [
        d
        for d in kinds(docs, "Deployment")
        if any(
            e["name"] == "MAX_CONCURRENT_JOBS"
            for e in d["spec"]["template"]["spec"]["containers"][0]["env"]
        )
    ]


def container_of(deploy: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = deploy["spec"]["template"]["spec"]["containers"][0]
    return container


WORKER_VARIANTS = [v for v in VARIANTS if v != "no-autoscaling"]


@pytest.mark.parametrize("variant", WORKER_VARIANTS)
def test_one_busy_job_and_an_empty_queue_want_one_worker(
    rendered: dict[str, list[dict[str, Any]]], variant: str
) -> None:
    """The issue's rule: one analysis keeping its CPU request busy, nothing else queued
    (0 undelivered, or 1: its own message is unacked until it finishes) -> one replica.
    Also at the CPU limit, the most a pod can use."""
    docs = rendered[variant]
    scalers = autoscalers(docs)
    (worker,) = workers(docs)
    scaler = scalers[worker["metadata"]["name"]]
    assert {m.kind for m in scaler.metrics} == {"backlog", "cpu"}, scaler
    resources = container_of(worker)["resources"]
    at_limit = 100 * quantity(resources["limits"]["cpu"]) / quantity(resources["requests"]["cpu"])
    for backlog in (0, 1):
        for cpu in (100.0, at_limit):
            assert scaler.desired(current=1, backlog=backlog, cpu=cpu) == 1, (backlog, cpu)


@pytest.mark.parametrize("variant", WORKER_VARIANTS)
def test_workers_follow_the_backlog_and_cpu_never_adds(
    rendered: dict[str, list[dict[str, Any]]], variant: str
) -> None:
    docs = rendered[variant]
    (worker,) = workers(docs)
    scaler = autoscalers(docs)[worker["metadata"]["name"]]
    env = {e["name"]: e.get("value") for e in container_of(worker)["env"]}
    slots = int(env["MAX_CONCURRENT_JOBS"])
    (backlog_metric,) = [m for m in scaler.metrics if m.kind == "backlog"]
    per_job = backlog_metric.target / slots
    resources = container_of(worker)["resources"]
    at_limit = 100 * quantity(resources["limits"]["cpu"]) / quantity(resources["requests"]["cpu"])
    # A backlog of n job slots' worth wants n replicas (up to the maximum), whatever the CPU.
    for wanted in (2, 3, scaler.max_replicas + 5):
        backlog = wanted * slots * per_job
        assert scaler.desired(current=1, backlog=backlog, cpu=100) == min(
            wanted, scaler.max_replicas
        )
    # CPU alone, even every pod pinned at its limit, never proposes more pods than there are.
    for current in range(1, scaler.max_replicas + 1):
        assert scaler.desired(current=current, backlog=0, cpu=at_limit) <= current


@pytest.mark.parametrize("variant", WORKER_VARIANTS)
def test_apis_scale_on_cpu_and_request_rate_not_memory(
    rendered: dict[str, list[dict[str, Any]]], variant: str
) -> None:
    docs = rendered[variant]
    api_names = {
        d["metadata"]["name"] for d in kinds(docs, "Deployment") if d not in workers(docs)
    } - {"flokraft-emulators", "flokraft-devauth"}
    scalers = autoscalers(docs)
    for name in api_names:
        kinds_ = [m.kind for m in scalers[name].metrics]
        assert "cpu" in kinds_, (name, kinds_)
        assert "backlog" not in kinds_, (name, kinds_)
        for hpa in kinds(docs, "HorizontalPodAutoscaler"):
            for m in hpa["spec"]["metrics"]:
                assert m.get("resource", {}).get("name") != "memory", hpa["metadata"]["name"]


def test_request_rate_metric_scales_the_api(rendered: dict[str, list[dict[str, Any]]]) -> None:
    scaler = autoscalers(rendered["knobs"])["fk-query-api"]
    assert [m.kind for m in scaler.metrics] == ["rps", "cpu"]
    # 40 requests/s per pod is the target: 3 pods at 80/s each want 6.
    assert scaler.desired(current=3, cpu=20, rps=80) == 6


def test_behavior_and_enabled_come_from_values(rendered: dict[str, list[dict[str, Any]]]) -> None:
    hpas = {h["metadata"]["name"]: h for h in kinds(rendered["knobs"], "HorizontalPodAutoscaler")}
    assert hpas["fk-analyzer"]["spec"]["behavior"]["scaleUp"] == {"stabilizationWindowSeconds": 30}
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    default = {
        h["metadata"]["name"]: h for h in kinds(rendered["default"], "HorizontalPodAutoscaler")
    }
    for name, svc in values["services"].items():
        assert default[f"flokraft-{name}"]["spec"]["behavior"] == svc["autoscaling"]["behavior"]
    off = rendered["no-autoscaling"]
    assert not kinds(off, "HorizontalPodAutoscaler")
    for deploy in kinds(off, "Deployment"):
        name = deploy["metadata"]["name"].removeprefix("flokraft-")
        assert deploy["spec"]["replicas"] == values["services"][name]["replicaCount"]


def test_keda_uses_the_documented_scaler_options(rendered: dict[str, list[dict[str, Any]]]) -> None:
    (scaled,) = kinds(rendered["keda"], "ScaledObject")
    pubsub, cpu = scaled["spec"]["triggers"]
    assert pubsub["type"] == "gcp-pubsub"
    assert set(pubsub["metadata"]) == {"mode", "value", "activationValue", "subscriptionName"}
    assert pubsub["metadata"]["mode"] == "SubscriptionSize"
    assert pubsub["metadata"]["subscriptionName"] == (
        "projects/demo-flokraft/subscriptions/analysis-jobs-analyzer"
    )
    (auth,) = kinds(rendered["keda"], "TriggerAuthentication")
    assert auth["spec"]["podIdentity"] == {"provider": "gcp"}
    assert pubsub["authenticationRef"]["name"] == auth["metadata"]["name"]
    assert cpu["type"] == "cpu"
    (scaled,) = kinds(rendered["keda-prometheus"], "ScaledObject")
    prom = scaled["spec"]["triggers"][0]
    assert prom["type"] == "prometheus"
    assert 'subscription_id="analysis-jobs-analyzer"' in prom["metadata"]["query"]
    assert prom["metadata"]["serverAddress"].startswith(
        "https://monitoring.googleapis.com/v1/projects/"
    )


def test_chart_refuses_a_cpu_target_that_would_scale_an_idle_queue(tools: dict[str, str]) -> None:
    result = subprocess.run(
        helm_template_cmd(
            tools["helm"],
            ["--set", "services.analyzer.autoscaling.targetCPUUtilizationPercentage=80"],
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "targetCPUUtilizationPercentage (80) must be at least" in result.stderr


def _render_with_topology(
    tools: dict[str, str], tmp_path: Path, edit: Callable[[dict[str, Any]], None]
) -> dict[str, str]:
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    path = chart / "files" / "pubsub-topology.yaml"
    topology = yaml.safe_load(path.read_text())
    edit(topology)
    path.write_text(yaml.safe_dump(topology))
    cmd = helm_template_cmd(tools["helm"], [])
    cmd[cmd.index(str(CHART))] = str(chart)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    (shared,) = [
        c
        for c in kinds(load_docs(out.stdout), "ConfigMap")
        if c["metadata"]["name"].endswith("-shared")
    ]
    data: dict[str, str] = shared["data"]
    return data


def test_max_attempts_and_subscriptions_come_from_the_topology_by_name(
    tools: dict[str, str], tmp_path: Path
) -> None:
    def edit(topology: dict[str, Any]) -> None:
        topology["subscriptions"].reverse()  # positions must not matter
        for sub in topology["subscriptions"]:
            if "deadLetterPolicy" in sub:
                sub["deadLetterPolicy"]["maxDeliveryAttempts"] = 7

    data = _render_with_topology(tools, tmp_path, edit)
    assert data["MAX_ATTEMPTS"] == "7"
    assert data["PUBSUB_SUBSCRIPTION"] == "analysis-jobs-analyzer"
    assert data["PUBSUB_DEAD_LETTER_SUBSCRIPTION"] == "analysis-jobs-dead-letter-analyzer"
    assert data["PUBSUB_TOPIC"] == "analysis-jobs"
