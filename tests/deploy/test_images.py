"""The service images: hadolint, and a replay of the Dockerfile's install step per service.

One Dockerfile builds every service; skaffold.yaml passes each its build arguments. No
Docker engine runs here, so the install step is reproduced instead of built: the build
stage's COPY lines are applied to a temp directory and its `uv sync` lines are run there,
with the service's build arguments, into a clean virtualenv. A missing COPY (say a new
workspace member) or a dependency the lock does not carry fails here rather than in the
image build.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from glob import glob
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.uv import env_with_uv

from .conftest import ROOT, SERVICES, env_without_uv_project, run, venv_tool

MODULES = {"query-api": "query_api", "rerun-api": "rerun_api", "analyzer": "analyzer"}
PORTS = {"query-api": "8001", "rerun-api": "8002", "analyzer": "8003"}
DOCKERFILE = ROOT / "Dockerfile"


def dockerfile(service: str) -> Path:
    """The one Dockerfile every service is built from."""
    return DOCKERFILE


def build_args(service: str) -> dict[str, str]:
    """What skaffold passes when it builds `service`."""
    config: dict[str, Any] = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    (artifact,) = (a for a in config["build"]["artifacts"] if a["image"] == f"flokraft-{service}")
    return {str(k): str(v) for k, v in artifact["docker"]["buildArgs"].items()}


def expand(line: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m[1] or m[2], m[0]), line)


def workspace_members() -> list[str]:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = root["tool"]["uv"]["workspace"]["members"]
    members = [
        Path(path).relative_to(ROOT).as_posix()
        for pattern in patterns
        for path in sorted(glob(str(ROOT / pattern)))
        if (Path(path) / "pyproject.toml").exists()
    ]
    return members


def logical_lines(text: str) -> list[str]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    return lines


def build_stage(text: str) -> list[str]:
    """Instructions of the stage named `build`."""
    stage: list[str] = []
    inside = False
    for line in logical_lines(text):
        if line.upper().startswith("FROM "):
            inside = bool(re.search(r"\bAS\s+build\b", line, re.IGNORECASE))
            continue
        if inside:
            stage.append(line)
    return stage


def test_hadolint_clean() -> None:
    # Any ignore must be an inline `# hadolint ignore=DLxxxx` with its reason beside it.
    run([venv_tool("hadolint"), "--failure-threshold", "style", str(DOCKERFILE)])


def test_one_dockerfile_for_every_service() -> None:
    assert not list(ROOT.glob("services/*/Dockerfile"))


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_shape(service: str) -> None:
    args = build_args(service)
    assert args == {"SERVICE": service, "MODULE": MODULES[service], "PORT": PORTS[service]} | (
        {"DEV_STOP_SECONDS": "70"} if service == "analyzer" else {}
    )
    text = dockerfile(service).read_text()
    froms = [ln for ln in logical_lines(text) if ln.upper().startswith("FROM ")]
    assert len(froms) >= 3, "multi-stage: a build stage and a runtime stage"
    assert froms[-1].endswith("AS runtime"), "the default (last) stage is the runtime image"
    runtime = text.split("AS runtime", 1)[1]
    assert re.search(r"^USER 10001", runtime, re.MULTILINE), "runs as the non-root uid"
    # Exec form; the build stage links the service's console script to this name.
    assert re.search(r'^ENTRYPOINT \["flokraft-service"\]', runtime, re.MULTILINE)
    build = [expand(line, args) for line in build_stage(text)]
    assert f'RUN ln -s "/app/.venv/bin/{service}" /app/.venv/bin/flokraft-service' in build
    assert "python:3.12-slim" in text
    base = text.split("AS base", 1)[1].split("AS dev", 1)[0]
    assert "uv" not in base.split("COPY --from=build", 1)[0], "no uv or build tools at runtime"
    assert "--frozen" in text
    assert any(f"--package flokraft-{service}" in line for line in build)
    assert f"EXPOSE {PORTS[service]}" in expand(text, args)


def test_dockerfile_and_dockerignore_carry_every_workspace_member() -> None:
    members = workspace_members()
    assert len(members) == 7, members
    copies = [ln for ln in build_stage(DOCKERFILE.read_text()) if ln.startswith("COPY ")]
    copied = {ln.split()[1].removesuffix("/pyproject.toml") for ln in copies if "pyproject" in ln}
    assert copied == {*members, "pyproject.toml"}
    allowed = {
        line[1:].removesuffix("/pyproject.toml")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!") and line.endswith("/pyproject.toml")
    }
    assert allowed == set(members)


@pytest.mark.parametrize("service", SERVICES)
def test_install_step_reproduced_in_clean_venv(service: str, tmp_path: Path) -> None:
    """Replays the build stage's COPY and `uv sync` lines, then imports the service."""
    context = tmp_path / "src"
    context.mkdir()
    venv = tmp_path / "venv"
    env = env_with_uv(env_without_uv_project())
    syncs = 0
    for line in build_stage(dockerfile(service).read_text()):
        word, _, rest = expand(line, build_args(service)).partition(" ")
        word = word.upper()
        if word == "ENV":
            continue  # the build's env is set below, with the image's venv path swapped
        if word == "COPY":
            if "--from=" in rest:
                continue  # the uv binary from its image; the local uv stands in for it
            *sources, dest = [a for a in shlex.split(rest) if not a.startswith("--")]
            into_dir = dest.endswith("/") or dest in (".", "./")
            for source in sources:
                src = ROOT / source
                target = context / dest
                if src.is_dir():
                    shutil.copytree(
                        src,
                        target,
                        dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
                    )
                else:
                    directory = target if into_dir else target.parent
                    directory.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, directory / (src.name if into_dir else target.name))
        elif word == "RUN":
            command = re.sub(r"--mount=\S+\s*", "", rest).strip()
            # The optional extra-ca secret's SSL_CERT_FILE: this machine's own TLS settings
            # stand in for it.
            command = re.sub(r'^SSL_CERT_FILE="[^"]*"\s+', "", command)
            if not command.startswith("uv "):
                continue  # the entrypoint link: checked by test_dockerfile_shape
            syncs += 1
            env.update(
                UV_PROJECT_ENVIRONMENT=str(venv),
                UV_PYTHON_DOWNLOADS="never",
                UV_LINK_MODE="copy",
                # The image runs CPython 3.12; this machine's interpreter stands in for it.
                UV_PYTHON=sys.executable,
            )
            result = subprocess.run(
                shlex.split(command),
                cwd=context,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert result.returncode == 0, f"`{command}` failed:\n{result.stderr[-6000:]}"
    assert syncs == 2, "dependencies first, then the workspace packages"

    python = venv / "bin" / "python"
    module = MODULES[service]
    probe = (
        f"import {module}.main as m; "
        f"assert hasattr(m, 'app'), 'no module-level app'; "
        f"import importlib.metadata as md; "
        "eps = md.entry_points(group='console_scripts'); "
        f"print([e.value for e in eps if e.name == '{service}'])"
    )
    result = subprocess.run(
        [str(python), "-c", probe],
        cwd=tmp_path,  # not the repo: the import must come from the venv, not the checkout
        env={k: v for k, v in env.items() if k != "PYTHONPATH"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-6000:]
    assert f"{module}.main:run" in result.stdout
    assert (venv / "bin" / service).exists(), "the ENTRYPOINT's console script is installed"
    assert not any(venv.glob("lib/python*/site-packages/pytest")), "no dev dependencies"
    assert os.access(venv / "bin" / service, os.X_OK)
