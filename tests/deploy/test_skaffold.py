"""skaffold.yaml against the published v4beta13 schema, plus what the dev loop relies on."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from .conftest import CHART, ROOT, SERVICES, helm_template_cmd, kinds, load_docs, run

# skaffold's published v4beta13 config schema, kept in the repo so the check never depends
# on what sits beside the checkout.
SCHEMA = Path(__file__).with_name("schemas") / "skaffold-v4beta13.json"


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    return loaded


def test_matches_schema(config: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(config), key=str)
    assert not errors, [f"{list(e.path)}: {e.message[:200]}" for e in errors]


def test_builds_and_deploys(config: dict[str, Any]) -> None:
    assert config["apiVersion"] == "skaffold/v4beta13"
    artifacts = {a["image"]: a for a in config["build"]["artifacts"]}
    assert set(artifacts) == {f"flokraft-{s}" for s in SERVICES}
    for service in SERVICES:
        artifact = artifacts[f"flokraft-{service}"]
        assert artifact["context"] == "."
        # One Dockerfile; the service is a build argument (see tests/deploy/test_images.py).
        assert artifact["docker"]["dockerfile"] == "Dockerfile"
        assert artifact["docker"]["buildArgs"]["SERVICE"] == service
        assert (ROOT / artifact["docker"]["dockerfile"]).exists()
    (release,) = config["deploy"]["helm"]["releases"]
    assert (ROOT / release["chartPath"]) == CHART
    templates = release["setValueTemplates"]
    for service in SERVICES:
        key = service.replace("-", "_")
        assert (
            templates[f"services.{service}.image.repository"]
            == f"{{{{.IMAGE_REPO_flokraft_{key}}}}}"
        )
        assert f"IMAGE_TAG_flokraft_{key}" in templates[f"services.{service}.image.tag"]
    forwarded = {p["resourceName"]: p["port"] for p in config["portForward"]}
    assert forwarded == {
        "flokraft-query-api": 8001,
        "flokraft-rerun-api": 8002,
        "flokraft-analyzer": 8003,
    }


def test_profiles(config: dict[str, Any]) -> None:
    profiles = {p["name"]: p for p in config["profiles"]}
    assert set(profiles) >= {"dev", "prod"}
    for name in ("dev", "prod"):
        (release,) = profiles[name]["deploy"]["helm"]["releases"]
        for values in release["valuesFiles"]:
            assert (ROOT / values).exists(), values
        assert f"helm/flokraft/values-{name}.yaml" in release["valuesFiles"]
    built = {a["image"]: a["docker"] for a in config["build"]["artifacts"]}
    for artifact in profiles["dev"]["build"]["artifacts"]:
        assert artifact["docker"]["target"] == "dev"
        # The dev image is the same build with another target.
        assert artifact["docker"]["buildArgs"] == built[artifact["image"]]["buildArgs"]
        rules = artifact["sync"]["manual"]
        assert rules
        assert all(r["src"].endswith("*.py") for r in rules)
        # The dev stage installs non-editable wheels; synced files must land in site-packages.
        assert all(r["dest"] == "/app/.venv/lib/python3.12/site-packages" for r in rules)
        dockerfile = (ROOT / artifact["docker"]["dockerfile"]).read_text()
        assert "AS dev" in dockerfile


def _skaffold_helm_args(release: dict[str, Any], env: dict[str, str]) -> list[str]:
    """The values skaffold hands helm for a release: its values files, then each
    setValueTemplates entry with `{{.NAME}}` filled from the environment (skaffold's Go
    templates over environment variables and build results) as `--set`."""
    args = [arg for path in release["valuesFiles"] for arg in ("-f", str(ROOT / path))]

    def expand(template: str) -> str:
        return re.sub(r"\{\{\.(\w+)\}\}", lambda m: env.get(m.group(1), ""), template)

    for key, template in release["setValueTemplates"].items():
        args += ["--set", f"{key}={expand(template)}"]
    return args


def _prod_env(**overrides: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for service in SERVICES:
        key = service.replace("-", "_")
        env[f"IMAGE_REPO_flokraft_{key}"] = f"europe-docker.pkg.dev/p/r/flokraft-{service}"
        env[f"IMAGE_TAG_flokraft_{key}"] = "abc123"
        env[f"IMAGE_DIGEST_flokraft_{key}"] = "sha256:" + "0" * 64
    return {**env, **overrides}


def test_prod_profile_takes_the_project_from_the_environment(
    config: dict[str, Any], tools: dict[str, str]
) -> None:
    (release,) = {p["name"]: p for p in config["profiles"]}["prod"]["deploy"]["helm"]["releases"]
    env = _prod_env(GCP_PROJECT="dance-eu-prod", GCP_PROJECT_NUMBER="987654321098")
    out = run(helm_template_cmd(tools["helm"], _skaffold_helm_args(release, env))).stdout
    placeholder = yaml.safe_load((CHART / "values-prod.yaml").read_text())["gcp"]["projectId"]
    assert placeholder not in out
    docs = load_docs(out)
    (shared,) = [d for d in kinds(docs, "ConfigMap") if d["metadata"]["name"].endswith("-shared")]
    assert shared["data"]["GOOGLE_CLOUD_PROJECT"] == "dance-eu-prod"
    members = {d["spec"]["member"] for d in kinds(docs, "IAMPolicyMember")}
    assert members == {"serviceAccount:service-987654321098@gcp-sa-pubsub.iam.gserviceaccount.com"}


@pytest.mark.parametrize("project", ["", "<no value>"])
def test_prod_profile_without_a_project_is_refused(
    config: dict[str, Any], tools: dict[str, str], project: str
) -> None:
    """Unset, skaffold's template gives an empty string (or Go's "<no value>"): the
    chart's schema refuses it instead of deploying to a placeholder project."""
    (release,) = {p["name"]: p for p in config["profiles"]}["prod"]["deploy"]["helm"]["releases"]
    args = _skaffold_helm_args(release, _prod_env(GCP_PROJECT=project))
    result = subprocess.run(
        helm_template_cmd(tools["helm"], args), capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode != 0
    assert "projectId" in result.stderr
