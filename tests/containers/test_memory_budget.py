"""The analyzer refuses a child cap that cannot fit its container, at start, and the chart
refuses such values when it renders: otherwise the kernel, not the analyzer, would end an
oversized job and take the whole pod with it."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time

import pytest

from analyzer.memory_budget import memory_budget
from analyzer.settings import AnalyzerSettings
from flokraft_devstack.processes import wait_until
from flokraft_devstack.settings import REPO_ROOT
from tests.containers.pods import HELM, Pod, memory_bytes
from tests.containers.stack import Stack, host_port, render_specs

MIB = 2**20


def refusal(output: str) -> dict[str, object]:
    """The refusal line of the last start (JSON logs)."""
    lines = [
        json.loads(line)
        for line in output.splitlines()
        if line.startswith("{") and "job_memory_does_not_fit" in line
    ]
    assert lines, output
    return dict(lines[-1])


def test_analyzer_container_refuses_a_cap_its_cgroup_cannot_hold(stack: Stack) -> None:
    """The rendered analyzer pod, its memory limit lowered to 300 MiB as a hand edit of the
    Deployment would (the chart refuses to render it): the container exits non-zero at
    start with one line naming both numbers and the limit's source, the cgroup, and the
    engine's restarts crash-loop it without it ever becoming ready."""
    _, specs = render_specs(stack.addresses, {s: host_port() for s in stack.pods})
    spec = dataclasses.replace(specs["analyzer"], memory_limit=300 * MIB, memory_request=256 * MIB)
    assert spec.env["JOB_MEMORY_LIMIT_MB"] == "1536"
    pod = Pod(spec=spec, name=f"{stack.pods['analyzer'].name}-too-small").start()
    try:
        assert wait_until(lambda: len(pod.deaths()) >= 2, 60), pod.logs()
        assert {death.attributes["exitCode"] for death in pod.deaths()} == {"2"}
        assert pod.restart_count() >= 1
        assert not pod.ready
        line = refusal(pod.logs(tail=20))
        assert line["limit_source"] == "cgroup"
        assert line["limit_mb"] == 300
        assert line["needed_mb"] == 1536 + 256 + 200
        assert line["level"] == "error"
    finally:
        pod.remove()


def test_analyzer_process_refuses_a_cap_above_the_configured_limit() -> None:
    """Outside a container (no cgroup limit), MEMORY_LIMIT_BYTES is the limit checked."""
    if memory_budget(AnalyzerSettings()).source == "cgroup":
        pytest.skip("this process runs under a cgroup memory limit, which wins")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "analyzer.main"],
        env={
            "PATH": "/usr/bin:/bin",
            "LOG_FORMAT": "json",
            "MEMORY_LIMIT_BYTES": str(300 * MIB),
            "JOB_MEMORY_LIMIT_MB": "1536",
            "GOOGLE_CLOUD_PROJECT": "demo-budget",
        },
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 2, result.stderr
    line = refusal(result.stdout + result.stderr)
    assert line["limit_source"] == "MEMORY_LIMIT_BYTES"
    assert (line["needed_mb"], line["limit_mb"]) == (1992, 300)
    assert time.monotonic() - started < 30, "refused at start, not after taking jobs"


def test_analyzer_starts_when_the_cap_fits(stack: Stack) -> None:
    """The chart's own analyzer pod (2Gi, 1536 + 256 + 200) passed the same check."""
    analyzer = stack.pods["analyzer"]
    assert analyzer.ready
    assert analyzer.spec.memory_limit == memory_bytes("2Gi")


@pytest.mark.parametrize(
    ("values", "fits"),
    [
        ([], True),
        (["services.analyzer.resources.limits.memory=1990Mi"], False),  # 1536 < 1990
        (["services.analyzer.jobMemoryBackstopMb=400"], False),
        (["services.analyzer.maxConcurrentJobs=2"], False),
        (
            [
                "services.analyzer.maxConcurrentJobs=2",
                "services.analyzer.jobMemoryLimitMb=650",
                "services.analyzer.workerMemoryHeadroomMb=150",
            ],
            True,
        ),
    ],
)
def test_chart_refuses_values_whose_children_cannot_fit(values: list[str], fits: bool) -> None:
    command = [str(HELM), "template", "x", str(REPO_ROOT / "helm" / "flokraft")]
    for value in values:
        command += ["--set", value]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert (result.returncode == 0) is fits, result.stderr
    if not fits:
        assert "exceeds the pod memory limit" in result.stderr
        assert "jobMemoryLimitMb" in result.stderr
