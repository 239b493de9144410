"""The chart's observability objects as helm renders them, for the tests of this folder."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from flokraft_devstack.settings import REPO_ROOT

CHART = REPO_ROOT / "helm" / "flokraft"
HELM = REPO_ROOT / ".tools" / "bin" / "helm"
RELEASE = "flokraft"


def helm() -> str:
    if not HELM.exists():
        subprocess.run(
            ["bash", str(REPO_ROOT / "scripts" / "install-k8s-tools.sh")],
            check=True,
            cwd=REPO_ROOT,
            timeout=300,
        )
    return str(HELM)


def render(namespace: str = "flokraft", *sets: str) -> list[dict[str, Any]]:
    """templates/observability.yaml rendered with `--set` overrides."""
    args = [helm(), "template", RELEASE, str(CHART), "--namespace", namespace]
    args += ["--show-only", "templates/observability.yaml"]
    for value in sets:
        args += ["--set", value]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=60)
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def rule_groups(namespace: str = "flokraft") -> list[dict[str, Any]]:
    """The alerting rules exactly as the chart hands them to Prometheus."""
    docs = render(namespace, "observability.rules.kind=prometheus-operator")
    (rule,) = [doc for doc in docs if doc["kind"] == "PrometheusRule"]
    groups: list[dict[str, Any]] = rule["spec"]["groups"]
    return groups


def write_rule_file(path: Path, namespace: str = "flokraft") -> Path:
    path.write_text(yaml.safe_dump({"groups": rule_groups(namespace)}, sort_keys=False))
    return path
