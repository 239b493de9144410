"""Shared fixtures of the deploy tests: the real tools and the rendered chart.

Everything here is rendered and validated offline: no cluster and no Docker engine runs on
the machines that run these tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "flokraft"
TOOLS_BIN = ROOT / ".tools" / "bin"
NAMESPACE = "flokraft"
RELEASE = "flokraft"
SERVICES = ("query-api", "rerun-api", "analyzer")

# The chart's values files: name -> extra helm args. "default" is what k8s/ holds.
PROFILES: dict[str, list[str]] = {
    "default": [],
    "dev": ["-f", str(CHART / "values-dev.yaml")],
    "prod": ["-f", str(CHART / "values-prod.yaml")],
}
VALUES_DIR = Path(__file__).with_name("values")


def _set(*pairs: str) -> list[str]:
    return [arg for pair in pairs for arg in ("--set", pair)]


# Every render the deploy tests validate (helm lint, kubernetes-validate, the CRD schemas,
# checkov, yamllint, the invariants): the values files plus the switches that change which
# kinds render or how. One line adds a variant.
VARIANTS: dict[str, list[str]] = {
    **PROFILES,
    "keda": _set("keda.enabled=true"),
    "keda-prometheus": _set("keda.enabled=true", "keda.scaler=prometheus"),
    "prod-keda": [*PROFILES["prod"], *_set("keda.enabled=true")],
    "prometheus-operator": _set(
        "observability.rules.kind=prometheus-operator", "observability.scrape=prometheus-operator"
    ),
    "ingress": _set("routing.mode=ingress", "routing.hostnames={api.example.com}"),
    "knobs": ["-f", str(VALUES_DIR / "knobs.yaml")],
    "existing-secrets": ["-f", str(VALUES_DIR / "existing-secrets.yaml")],
    "no-autoscaling": _set(*(f"services.{s}.autoscaling.enabled=false" for s in SERVICES)),
}


def venv_tool(name: str) -> str:
    """A console script of the project's own virtualenv (hadolint, checkov, ...)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: `make test` or `uv sync --inexact --group deploy`")
    return found


@pytest.fixture(scope="session")
def tools() -> dict[str, str]:
    """helm and kubectl from .tools/bin, installed by scripts/install-k8s-tools.sh if missing."""
    helm, kubectl = TOOLS_BIN / "helm", TOOLS_BIN / "kubectl"
    if not (helm.exists() and kubectl.exists()):
        subprocess.run(
            ["bash", str(ROOT / "scripts" / "install-k8s-tools.sh")],
            check=True,
            cwd=ROOT,
            timeout=300,
        )
    return {"helm": str(helm), "kubectl": str(kubectl)}


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("timeout", 300)
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, **kwargs)
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout[-8000:]}\nstderr:\n{result.stderr[-8000:]}"
        )
    return result


def helm_template_cmd(helm: str, extra: list[str]) -> list[str]:
    return [helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *extra]


@pytest.fixture(scope="session")
def render(tools: dict[str, str]) -> Callable[..., str]:
    """helm template with a variant's values (plus extra args), memoised per argument list."""
    cache: dict[tuple[str, ...], str] = {}

    def _render(variant: str = "default", *extra: str) -> str:
        key = (variant, *extra)
        if key not in cache:
            cmd = helm_template_cmd(tools["helm"], [*VARIANTS[variant], *extra])
            cache[key] = run(cmd).stdout
        return cache[key]

    return _render


def load_docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


@pytest.fixture(scope="session")
def rendered(render: Callable[..., str]) -> dict[str, list[dict[str, Any]]]:
    return {name: load_docs(render(name)) for name in VARIANTS}


@pytest.fixture(scope="session")
def tmp_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("deploy")


def kinds(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


def env_without_uv_project() -> dict[str, str]:
    env = dict(os.environ)
    for key in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"):
        env.pop(key, None)
    return env
