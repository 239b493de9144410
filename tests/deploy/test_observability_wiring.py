"""What ties the chart's observability to the rest of it: the network policy admits the
scraper `observability.scrape` names, and every Pub/Sub name in the output (alerts,
dashboards, HPA, KEDA, settings, Config Connector) comes from files/pubsub-topology.yaml,
so renaming a subscription there leaves no old name anywhere."""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from flokraft_observability.names import subscriptions

from .conftest import CHART, NAMESPACE, RELEASE, SERVICES, kinds, load_docs, run

Docs = list[dict[str, Any]]


def metrics_peers(docs: Docs, service: str) -> list[dict[str, Any]]:
    """The peers a service's policy admits to its port other than the load balancer's:
    the rule that is not the API ingress rule (which names the helm test pod)."""
    (policy,) = [
        d for d in kinds(docs, "NetworkPolicy") if d["metadata"]["name"] == f"{RELEASE}-{service}"
    ]
    peers: list[dict[str, Any]] = []
    for rule in policy["spec"].get("ingress", []):
        sources = rule["from"]
        if any("ipBlock" in s for s in sources):
            continue  # the load balancer's ranges and the helm test pod
        peers += sources
    return peers


@pytest.mark.parametrize("service", SERVICES)
def test_gmp_scraping_admits_gmp_system(rendered: dict[str, Docs], service: str) -> None:
    assert metrics_peers(rendered["default"], service) == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gmp-system"}}}
    ]


@pytest.mark.parametrize("service", SERVICES)
def test_prometheus_operator_scraping_admits_its_prometheus_not_gmp(
    rendered: dict[str, Docs], service: str
) -> None:
    # Both selectors in one peer: Prometheus pods in kube-prometheus-stack's namespace.
    assert metrics_peers(rendered["prometheus-operator"], service) == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "prometheus"}},
        }
    ]


def test_the_prometheus_namespace_and_labels_are_configurable(
    render: Callable[..., str],
) -> None:
    docs = load_docs(
        render(
            "prometheus-operator",
            "--set",
            "observability.prometheusOperator.namespace=observability",
            "--set",
            "observability.prometheusOperator.podLabels.prometheus=kps-prometheus",
            "--set",
            "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.team=sre",
        )
    )
    peers = metrics_peers(docs, "analyzer")
    assert peers[0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "observability"
    }
    assert peers[0]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "prometheus",
        "prometheus": "kps-prometheus",
    }
    # metricsFrom adds peers to the scraper's.
    assert peers[1:] == [{"namespaceSelector": {"matchLabels": {"team": "sre"}}}]


@pytest.mark.parametrize("scrape", ["annotations", "none"])
def test_without_a_known_scraper_only_listed_peers_are_admitted(
    render: Callable[..., str], scrape: str
) -> None:
    docs = load_docs(render("default", "--set", f"observability.scrape={scrape}"))
    assert metrics_peers(docs, "query-api") == []
    listed = load_docs(
        render(
            "default",
            "--set",
            f"observability.scrape={scrape}",
            "--set",
            "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.name=prometheus",
        )
    )
    assert metrics_peers(listed, "query-api") == [
        {"namespaceSelector": {"matchLabels": {"name": "prometheus"}}}
    ]


# --- names written once ---------------------------------------------------------------

OLD = "analysis-jobs"
NEW = "clip-queue"


def _renamed_chart(tmp_path: Path) -> Path:
    """A copy of the chart whose topology file names every topic and subscription anew;
    nothing else is edited."""
    chart = tmp_path / "flokraft"
    shutil.copytree(CHART, chart)
    topology = chart / "files" / "pubsub-topology.yaml"
    text = topology.read_text()
    assert OLD in text
    topology.write_text(text.replace(OLD, NEW))
    return chart


def _decoded(text: str) -> str:
    """The render with every ConfigMap's binaryData (the dashboards) decoded."""
    parts = [text]
    for doc in load_docs(text):
        for value in (doc.get("binaryData") or {}).values():
            parts.append(base64.b64decode(value).decode())
    return "\n".join(parts)


RENAME_VARIANTS: dict[str, list[str]] = {
    "default": [],
    "prod": ["-f", str(CHART / "values-prod.yaml")],
    "keda": ["--set", "keda.enabled=true"],
    "keda-prometheus": ["--set", "keda.enabled=true", "--set", "keda.scaler=prometheus"],
    "prometheus-operator": ["--set", "observability.rules.kind=prometheus-operator"],
}


@pytest.mark.parametrize("variant", RENAME_VARIANTS)
def test_renaming_the_topology_leaves_no_old_name(
    tools: dict[str, str], tmp_path: Path, variant: str
) -> None:
    chart = _renamed_chart(tmp_path)
    cmd = [tools["helm"], "template", RELEASE, str(chart), "--namespace", NAMESPACE]
    raw = run([*cmd, *RENAME_VARIANTS[variant]]).stdout
    text = _decoded(raw)
    assert OLD not in text
    new_job, new_dead = f"{NEW}-analyzer", f"{NEW}-dead-letter-analyzer"
    docs = load_docs(raw)
    # The settings, the alerts and the dashboards all carry the new names.
    (shared,) = [d for d in kinds(docs, "ConfigMap") if d["metadata"]["name"].endswith("-shared")]
    assert shared["data"]["PUBSUB_SUBSCRIPTION"] == new_job
    assert shared["data"]["PUBSUB_DEAD_LETTER_SUBSCRIPTION"] == new_dead
    assert shared["data"]["PUBSUB_TOPIC"] == NEW
    assert f'subscription_id="{new_job}"' in text
    assert f'subscription_id="{new_dead}"' in text
    assert f'"query": "{new_job}"' in text  # the dashboards' constant variable
    scaler = [*kinds(docs, "HorizontalPodAutoscaler"), *kinds(docs, "ScaledObject")]
    assert new_job in yaml.safe_dump([d for d in scaler if "analyzer" in d["metadata"]["name"]])


def test_python_tools_pick_the_subscriptions_the_chart_picks(
    tools: dict[str, str], tmp_path: Path
) -> None:
    """make dev-observability, the pictures and the real-Prometheus test fill the same
    placeholders from the same file (flokraft_observability.names)."""
    for chart in (CHART, _renamed_chart(tmp_path)):
        out = subprocess.run(
            [
                tools["helm"],
                "template",
                RELEASE,
                str(chart),
                "--show-only",
                "templates/configmap.yaml",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        data = yaml.safe_load(out)["data"]
        picked = subscriptions(chart / "files" / "pubsub-topology.yaml", chart / "values.yaml")
        assert (picked.job, picked.dead_letter) == (
            data["PUBSUB_SUBSCRIPTION"],
            data["PUBSUB_DEAD_LETTER_SUBSCRIPTION"],
        )


def test_an_ambiguous_topology_asks_for_the_subscription_by_name(
    tools: dict[str, str], tmp_path: Path
) -> None:
    chart = tmp_path / "flokraft"
    shutil.copytree(CHART, chart)
    topology = chart / "files" / "pubsub-topology.yaml"
    loaded = yaml.safe_load(topology.read_text())
    second = {**loaded["subscriptions"][0], "name": "analysis-jobs-audit"}
    loaded["subscriptions"].append(second)
    topology.write_text(yaml.safe_dump(loaded))
    cmd = [tools["helm"], "template", RELEASE, str(chart)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode != 0
    assert "set pubsub.jobSubscription" in result.stderr
    named = run([*cmd, "--set", "pubsub.jobSubscription=analysis-jobs-audit"]).stdout
    assert 'PUBSUB_SUBSCRIPTION: "analysis-jobs-audit"' in named
