"""The chart, rendered and checked by the real tools: helm, kubernetes-validate, checkov,
yamllint, and our own schemas for the custom resources."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from .conftest import CHART, PROFILES, ROOT, load_docs, run, venv_tool
from .crd_schemas import schema_for

# kubernetes-validate 1.37 ships schemas for 1.28 ... 1.37 offline; these are the two
# versions the chart promises (the oldest GKE version we target and the newest).
K8S_VERSIONS = ("1.30.0", "1.35.0")
# Extra renders beyond the three values files: the switches that change which kinds render.
VARIANTS: dict[str, tuple[str, ...]] = {
    "keda": ("--set", "keda.enabled=true"),
    "ingress": ("--set", "routing.mode=ingress", "--set", "routing.hostnames={api.example.com}"),
}
YAMLLINT_CONFIG = Path(__file__).with_name("yamllint.yaml")


def all_renders(render: Callable[..., str]) -> dict[str, str]:
    out = {name: render(name) for name in PROFILES}
    out.update({name: render("default", *args) for name, args in VARIANTS.items()})
    return out


BUILTIN_GROUPS = ("", "apps", "batch", "policy", "autoscaling")


def is_builtin(doc: dict[str, Any]) -> bool:
    """Kinds kubernetes-validate has schemas for: core groups and *.k8s.io except Gateway API."""
    group = doc["apiVersion"].rpartition("/")[0]
    if group in BUILTIN_GROUPS:
        return True
    return group.endswith(".k8s.io") and not group.startswith("gateway.")


@pytest.mark.parametrize("profile", list(PROFILES))
def test_helm_lint_strict(tools: dict[str, str], profile: str) -> None:
    run([tools["helm"], "lint", "--strict", str(CHART), *PROFILES[profile]])


def test_values_schema_rejects_typos(tools: dict[str, str]) -> None:
    import subprocess

    for bad in (
        "services.query-api.replica=3",
        "routing.mode=loadbalancer",
        "image.pullpolicy=Always",
    ):
        result = subprocess.run(
            [tools["helm"], "template", "x", str(CHART), "--set", bad],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode != 0, f"--set {bad} should fail the schema"
        assert "schema" in result.stderr


def test_chart_refuses_job_cap_at_pod_limit(tools: dict[str, str]) -> None:
    import subprocess

    result = subprocess.run(
        [
            tools["helm"],
            "template",
            "x",
            str(CHART),
            "--set",
            "services.analyzer.jobMemoryLimitMb=2048",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "jobMemoryLimitMb" in result.stderr


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kubernetes_validate_strict(
    render: Callable[..., str], tmp_path: Path, version: str
) -> None:
    for name, text in all_renders(render).items():
        builtin = [d for d in load_docs(text) if is_builtin(d)]
        assert builtin, name
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump_all(builtin, sort_keys=False))
        result = run([venv_tool("kubernetes-validate"), "-k", version, "--strict", str(path)])
        assert "ERROR" not in result.stdout + result.stderr, result.stdout


def test_custom_resources_match_their_schemas(render: Callable[..., str]) -> None:
    """CRD kinds (no schema in kubernetes-validate) are checked against crd_schemas.py."""
    seen: set[str] = set()
    for name, text in all_renders(render).items():
        for doc in load_docs(text):
            if is_builtin(doc):
                continue
            schema = schema_for(doc["apiVersion"], doc["kind"])
            assert schema is not None, f"{name}: no schema for {doc['apiVersion']} {doc['kind']}"
            jsonschema.validate(doc, schema)
            seen.add(doc["kind"])
    assert seen >= {
        "HTTPRoute",
        "HealthCheckPolicy",
        "ScaledObject",
        "TriggerAuthentication",
        "PubSubTopic",
        "PubSubSubscription",
        "IAMPolicyMember",
    }


@pytest.mark.parametrize("profile", [*PROFILES, *VARIANTS])
def test_checkov_no_failed_checks(render: Callable[..., str], tmp_path: Path, profile: str) -> None:
    text = render(profile) if profile in PROFILES else render("default", *VARIANTS[profile])
    path = tmp_path / f"{profile}.yaml"
    path.write_text(text)
    result = run(
        [
            venv_tool("checkov"),
            "-f",
            str(path),
            "--framework",
            "kubernetes",
            "--skip-download",
            "--compact",
            "-o",
            "json",
        ],
        timeout=600,
    )
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    failed = report.get("results", {}).get("failed_checks", [])
    assert not failed, [(f["check_id"], f["resource"]) for f in failed]
    # Every skip must come from the chart, with a written reason.
    skipped = report["results"]["skipped_checks"]
    assert skipped, "expected the chart's documented skips"
    for check in skipped:
        reason = check["check_result"].get("suppress_comment") or ""
        assert len(reason.strip()) > 20, (check["check_id"], check["resource"])


def test_yamllint(render: Callable[..., str], tmp_path: Path) -> None:
    files = [
        *sorted(CHART.glob("values*.yaml")),
        CHART / "Chart.yaml",
        CHART / "files" / "pubsub-topology.yaml",
        ROOT / "skaffold.yaml",
        *sorted((ROOT / "k8s").glob("*.yaml")),
    ]
    for name, text in all_renders(render).items():
        path = tmp_path / f"rendered-{name}.yaml"
        path.write_text(text)
        files.append(path)
    run([venv_tool("yamllint"), "--strict", "-c", str(YAMLLINT_CONFIG), *map(str, files)])
