"""The commands docs/deploy.md gives work: every helm command on this chart renders with
exactly its flags (install and upgrade become `helm template`), and every Python module the
doc and the chart's NOTES.txt name imports."""

from __future__ import annotations

import importlib
import itertools
import re
import shlex
from pathlib import Path

import pytest
import yaml

from .conftest import CHART, ROOT, run

DOC = ROOT / "docs" / "deploy.md"
NOTES = CHART / "templates" / "NOTES.txt"
# Shell variables the doc's commands use, with values of the right shape.
SHELL_VARIABLES = {
    "PROJECT": "dance-eu-prod",
    "PROJECT_NUMBER": "987654321098",
    "API_HOST": "api.dance.example",
    "REGION": "europe-west1",
}
# Charts the doc installs that are not this one (fetched from their repositories, which the
# tests cannot reach): never rendered here.
OTHER_CHARTS = {"grafana/grafana"}
# Flags of install/upgrade that `helm template` has no use for.
DEPLOY_ONLY_FLAGS = {"--install", "--create-namespace", "--wait", "--atomic"}


def shell_commands(text: str) -> list[str]:
    """Every command of the doc's ```sh blocks, continuation lines joined."""
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def _expand(command: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in SHELL_VARIABLES:
            pytest.fail(f"{command}: add ${name} to SHELL_VARIABLES")
        return SHELL_VARIABLES[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, command)


def helm_commands() -> list[list[str]]:
    return [
        shlex.split(_expand(c))
        for c in shell_commands(DOC.read_text())
        if re.match(r"helm\s+(install|upgrade|template)\b", c)
    ]


def as_template(argv: list[str]) -> list[str]:
    """`helm install|upgrade [--install] NAME CHART flags...` as `helm template`."""
    rest = [a for a in argv[2:] if a not in DEPLOY_ONLY_FLAGS]
    return ["template", *rest]


def test_the_doc_has_the_commands_this_test_reads() -> None:
    commands = helm_commands()
    charts = [as_template(argv)[2] for argv in commands]  # template NAME CHART ...
    # The dev install, the prod upgrade, the fresh project's release, the render without
    # custom resources, and Grafana.
    assert len(commands) >= 5, commands
    assert set(charts) - {"helm/flokraft"} == OTHER_CHARTS


@pytest.mark.parametrize(
    "argv",
    [c for c in helm_commands() if as_template(c)[2] == "helm/flokraft"],
    ids=lambda argv: " ".join(argv[:3]) + f" ({len(argv)} args)",
)
def test_every_helm_command_of_the_doc_renders(tools: dict[str, str], argv: list[str]) -> None:
    template = as_template(argv)
    # Relative paths in the doc are from the repository root, where run() works.
    out = run([tools["helm"], *template]).stdout
    assert "kind: Deployment" in out
    for flag, value in itertools.pairwise(template):
        if flag == "--set" and value.startswith("gcp.projectId="):
            assert f'GOOGLE_CLOUD_PROJECT: "{value.split("=", 1)[1]}"' in out


def test_the_project_number_renders_whether_set_as_a_string_or_a_number(
    tools: dict[str, str],
) -> None:
    """helm parses `--set gcp.projectNumber=123456789012` as a number; both spellings give
    the same Pub/Sub service agent."""
    base = [
        tools["helm"],
        "template",
        "flokraft",
        str(CHART),
        "-f",
        str(CHART / "values-prod.yaml"),
    ]
    agent = "service-987654321098@gcp-sa-pubsub.iam.gserviceaccount.com"
    for flag in ("--set", "--set-string"):
        out = run([*base, flag, "gcp.projectNumber=987654321098"]).stdout
        assert agent in out, flag


def modules_named(path: Path) -> set[str]:
    return set(re.findall(r"python -m ([A-Za-z_][\w.]*)", path.read_text()))


@pytest.mark.parametrize("path", [DOC, NOTES], ids=lambda p: p.name)
def test_every_module_named_imports(path: Path) -> None:
    modules = modules_named(path)
    assert modules, f"{path.name} names no module any more: drop it from this test"
    for module in sorted(modules):
        importlib.import_module(module)


def test_the_docs_gateway_is_the_one_values_prod_attaches_to() -> None:
    """The Gateway the fresh-project path creates carries the name, namespace and listener
    values-prod.yaml's route names, and admits routes from the release's namespace."""
    (manifest,) = re.findall(r"<<'YAML'\n(.*?)\nYAML\n", DOC.read_text(), flags=re.DOTALL)
    gateway = yaml.safe_load(manifest)
    routing = yaml.safe_load((CHART / "values-prod.yaml").read_text())["routing"]["gateway"]
    assert gateway["kind"] == "Gateway"
    assert gateway["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert gateway["metadata"]["name"] == routing["name"]
    assert gateway["metadata"]["namespace"] == routing["namespace"]
    (listener,) = [
        item for item in gateway["spec"]["listeners"] if item["name"] == routing["sectionName"]
    ]
    assert listener["protocol"] == "HTTPS"
    allowed = listener["allowedRoutes"]["namespaces"]
    assert allowed["from"] == "Selector"
    assert allowed["selector"]["matchLabels"] == {"kubernetes.io/metadata.name": "flokraft"}
