"""A real Prometheus for the local stack: scrape configuration and the chart's own rules.

Local processes have no Kubernetes labels, so each target gets the `namespace`, `pod` and
`container` labels the chart's scrape paths give a pod, and every dashboard query and
alert of the chart works unchanged against it (`make dev-observability`, and
tests/observability against the real services).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from flokraft_observability.names import fill

REPO_ROOT = Path(__file__).resolve().parents[4]
ALERTS = REPO_ROOT / "helm" / "flokraft" / "files" / "alerts.yaml"
RUNBOOKS = REPO_ROOT / "docs" / "runbooks.md"
LOCAL_NAMESPACE = "flokraft-local"


def rule_file_text(namespace: str, runbooks_url: str) -> str:
    """files/alerts.yaml with the placeholders templates/observability.yaml fills
    (tests/observability checks both agree)."""
    return fill(ALERTS.read_text(), namespace, runbooks_url)


@dataclass(frozen=True)
class Target:
    container: str
    address: str  # host:port of its /metrics
    extra_labels: Mapping[str, str] | None = None


def scrape_config(
    targets: Sequence[Target],
    rule_file: Path,
    *,
    namespace: str = LOCAL_NAMESPACE,
    interval: str = "15s",
    honor_labels_targets: Sequence[str] = (),
) -> dict[str, Any]:
    """Prometheus configuration: one job for the services, labelled as in a cluster.

    honor_labels_targets are exporters that speak for other objects (as kube-state-metrics
    does); their series keep their own namespace/pod/container labels."""
    static = [
        {
            "targets": [t.address],
            "labels": {
                "namespace": namespace,
                "pod": f"{t.container}-local",
                "container": t.container,
                **(t.extra_labels or {}),
            },
        }
        for t in targets
    ]
    jobs: list[dict[str, Any]] = [
        {"job_name": "flokraft", "metrics_path": "/metrics", "static_configs": static}
    ]
    if honor_labels_targets:
        jobs.append(
            {
                "job_name": "cluster-state",
                "honor_labels": True,
                "static_configs": [{"targets": list(honor_labels_targets)}],
            }
        )
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(rule_file)],
        "scrape_configs": jobs,
    }


def write_config(
    directory: Path, targets: Sequence[Target], *, namespace: str = LOCAL_NAMESPACE, **kwargs: Any
) -> Path:
    """Writes rules.yaml and prometheus.yml into directory; returns the latter."""
    directory.mkdir(parents=True, exist_ok=True)
    rules = directory / "rules.yaml"
    rules.write_text(rule_file_text(namespace, RUNBOOKS.as_uri()))
    config = directory / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            scrape_config(targets, rules, namespace=namespace, **kwargs), sort_keys=False
        )
    )
    return config


def command(
    prometheus: str, config: Path, data_dir: Path, listen: str, retention: str = "1d"
) -> list[str]:
    return [
        prometheus,
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir}",
        f"--storage.tsdb.retention.time={retention}",
        f"--web.listen-address={listen}",
        # The console templates Debian ships are not used; the API and the graph UI are.
        "--web.enable-lifecycle",
    ]
