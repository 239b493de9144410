"""The chart's drain on every values profile: each API pod pauses in preStop while the
load balancer stops routing, drains for as long as readiness needs to be seen failing,
and gets a grace period that covers both plus the graceful shutdown. Played against real
processes in tests/query_api/test_rolling_restart.py."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from .conftest import VARIANTS, helm_template_cmd, kinds

# uvicorn's graceful shutdown (flokraft_core.web.server.serve): in-flight requests and
# the event streams' final `reconnect` (within EVENTS_SHUTDOWN_GRACE_SECONDS, 5 s).
GRACEFUL_SHUTDOWN_SECONDS = 10


@pytest.mark.parametrize("profile", list(VARIANTS))
def test_every_api_pod_drains_inside_its_grace_period(
    rendered: dict[str, Any], profile: str
) -> None:
    apis = 0
    for deploy in kinds(rendered[profile], "Deployment"):
        pod = deploy["spec"]["template"]["spec"]
        container = pod["containers"][0]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        if "DRAIN_SECONDS" not in env:
            continue
        apis += 1
        where = f"{profile}/{deploy['metadata']['name']}"
        probe = container["readinessProbe"]
        drain = float(env["DRAIN_SECONDS"])
        # Long enough for failureThreshold failing probes, one per period.
        assert drain >= probe["periodSeconds"] * probe["failureThreshold"], where
        pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pre_stop > 0, where
        assert (
            pod["terminationGracePeriodSeconds"] >= pre_stop + drain + GRACEFUL_SHUTDOWN_SECONDS
        ), where
    assert apis == 2, profile


def test_a_grace_period_too_short_for_the_drain_fails_the_render(tools: dict[str, str]) -> None:
    cmd = helm_template_cmd(
        tools["helm"], ["--set", "services.query-api.terminationGracePeriodSeconds=20"]
    )
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "must cover preStopSeconds" in result.stderr
