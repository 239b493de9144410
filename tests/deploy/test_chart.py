"""The chart, rendered and checked by the real tools: helm, kubernetes-validate, checkov,
yamllint, and the published CRD schemas for the custom resources."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import CHART, ROOT, VARIANTS, load_docs, run, venv_tool
from .crd_schemas import crd_errors

# kubernetes-validate 1.37 ships schemas for 1.28 ... 1.37 offline; these are the two
# versions the chart promises (the oldest GKE version we target and the newest).
K8S_VERSIONS = ("1.30.0", "1.35.0")
YAMLLINT_CONFIG = Path(__file__).with_name("yamllint.yaml")
# Every custom resource kind some variant renders; a kind that stops rendering (or a
# variant that stops exercising it) fails test_every_crd_kind_is_exercised.
CRD_KINDS = {
    "HTTPRoute",
    "HealthCheckPolicy",
    "ScaledObject",
    "TriggerAuthentication",
    "PodMonitoring",
    "Rules",
    "PrometheusRule",
    "PodMonitor",
    "PubSubTopic",
    "PubSubSubscription",
    "IAMPolicyMember",
}


def all_renders(render: Callable[..., str]) -> dict[str, str]:
    return {name: render(name) for name in VARIANTS}


BUILTIN_GROUPS = ("", "apps", "batch", "policy", "autoscaling")


def is_builtin(doc: dict[str, Any]) -> bool:
    """Kinds kubernetes-validate has schemas for: core groups and *.k8s.io except Gateway API."""
    group = doc["apiVersion"].rpartition("/")[0]
    if group in BUILTIN_GROUPS:
        return True
    return group.endswith(".k8s.io") and not group.startswith("gateway.")


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_helm_lint_strict(tools: dict[str, str], variant: str) -> None:
    run([tools["helm"], "lint", "--strict", str(CHART), *VARIANTS[variant]])


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


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_custom_resources_match_published_crds(render: Callable[..., str], variant: str) -> None:
    """Every custom resource of every variant against its project's published CRD schema."""
    failures = {
        f"{doc['kind']}/{doc['metadata']['name']}": errors
        for doc in load_docs(render(variant))
        if not is_builtin(doc) and (errors := crd_errors(doc))
    }
    assert not failures, json.dumps(failures, indent=2)


def test_gmp_rule_groups_have_an_interval(render: Callable[..., str]) -> None:
    (rules,) = [d for d in load_docs(render("default")) if d["kind"] == "Rules"]
    assert crd_errors(rules) == []


def test_crd_validation_catches_what_a_cluster_refuses(render: Callable[..., str]) -> None:
    """The vendored schemas are strict where the CRDs are: an unknown field, a missing
    required field and a wrong enum value each fail."""
    (route,) = [d for d in load_docs(render("default")) if d["kind"] == "HTTPRoute"]
    assert crd_errors(route) == []
    typo = json.loads(json.dumps(route))
    typo["spec"]["rules"][0]["backendRef"] = typo["spec"]["rules"][0].pop("backendRefs")
    assert any("backendRef" in e for e in crd_errors(typo))
    bad_method = json.loads(json.dumps(route))
    bad_method["spec"]["rules"][0]["matches"][0]["method"] = "FETCH"
    assert any("FETCH" in e for e in crd_errors(bad_method))
    unknown = {**route, "apiVersion": "gateway.networking.k8s.io/v9"}
    assert crd_errors(unknown)[0].startswith("no CRD schema")


def test_every_crd_kind_is_exercised(render: Callable[..., str]) -> None:
    seen = {
        doc["kind"]
        for text in all_renders(render).values()
        for doc in load_docs(text)
        if not is_builtin(doc)
    }
    assert seen >= CRD_KINDS, CRD_KINDS - seen


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_checkov_no_failed_checks(render: Callable[..., str], tmp_path: Path, variant: str) -> None:
    text = render(variant)
    path = tmp_path / f"{variant}.yaml"
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
