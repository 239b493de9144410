"""The service images: hadolint, and a replay of each Dockerfile's install step.

No Docker engine runs here, so the install step is reproduced instead of built: the build
stage's COPY lines are applied to a temp directory and its `uv sync` lines are run there,
unchanged, into a clean virtualenv. A missing COPY (say a new workspace member) or a
dependency the lock does not carry fails here rather than in the image build.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, SERVICES, env_without_uv_project, run, venv_tool

MODULES = {"query-api": "query_api", "rerun-api": "rerun_api", "analyzer": "analyzer"}


def dockerfile(service: str) -> Path:
    return ROOT / "services" / service / "Dockerfile"


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


@pytest.mark.parametrize("service", SERVICES)
def test_hadolint_clean(service: str) -> None:
    # Any ignore must be an inline `# hadolint ignore=DLxxxx` with its reason beside it.
    run([venv_tool("hadolint"), "--failure-threshold", "style", str(dockerfile(service))])


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_shape(service: str) -> None:
    text = dockerfile(service).read_text()
    froms = [ln for ln in logical_lines(text) if ln.upper().startswith("FROM ")]
    assert len(froms) >= 3, "multi-stage: a build stage and a runtime stage"
    assert froms[-1].endswith("AS runtime"), "the default (last) stage is the runtime image"
    runtime = text.split("AS runtime", 1)[1]
    assert re.search(r"^USER 10001", runtime, re.MULTILINE), "runs as the non-root uid"
    assert re.search(rf'^ENTRYPOINT \["{service}"\]', runtime, re.MULTILINE), "exec form"
    assert "python:3.12-slim" in text
    base = text.split("AS base", 1)[1].split("AS dev", 1)[0]
    assert "uv" not in base.split("COPY --from=build", 1)[0], "no uv or build tools at runtime"
    assert "--frozen" in text
    assert f"--package flokraft-{service}" in text


@pytest.mark.parametrize("service", SERVICES)
def test_install_step_reproduced_in_clean_venv(service: str, tmp_path: Path) -> None:
    """Replays the build stage's COPY and `uv sync` lines, then imports the service."""
    context = tmp_path / "src"
    context.mkdir()
    venv = tmp_path / "venv"
    env = env_without_uv_project()
    syncs = 0
    for line in build_stage(dockerfile(service).read_text()):
        word, _, rest = line.partition(" ")
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
            if not command.startswith("uv "):
                continue
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
