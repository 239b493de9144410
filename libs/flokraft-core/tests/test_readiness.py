"""The background monitors behind /readyz: a shared dependency's checks feed a gauge and
one log line per change, never readiness; a blocked event loop is reported for a window."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import REGISTRY

from flokraft_core.readiness import DependencyMonitor, LoopMonitor


def _up(name: str) -> float | None:
    return REGISTRY.get_sample_value("flokraft_dependency_up", {"dependency": name})


def test_dependency_checks_feed_the_gauge_and_report_changes() -> None:
    outcomes = [None, RuntimeError("refused"), RuntimeError("refused"), None]

    async def check() -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    async def hang() -> None:
        await asyncio.sleep(10)

    async def scenario() -> list[dict[str, str]]:
        monitor = DependencyMonitor(
            {"unit-db": check, "unit-slow": hang}, interval=3600, timeout=0.05
        )
        reports = []
        for _ in range(4):
            await monitor.check_all()
            reports.append(monitor.report())
        return reports

    reports = asyncio.run(scenario())
    assert reports[0]["unit-db"] == "ok"
    assert reports[1]["unit-db"].startswith("down for 0 s: RuntimeError: refused")
    assert reports[2]["unit-db"].startswith("down for")
    assert reports[3]["unit-db"] == "ok"
    assert reports[3]["unit-slow"].endswith("timed out after 0.05 s")
    assert _up("unit-db") == 1
    assert _up("unit-slow") == 0
    failures = REGISTRY.get_sample_value(
        "flokraft_dependency_check_failures_total", {"dependency": "unit-db"}
    )
    assert failures == 2


def test_a_blocked_loop_is_reported_for_the_window_then_forgotten() -> None:
    async def scenario() -> tuple[str | None, str | None, str | None]:
        monitor = LoopMonitor(max_lag=0.2, window=0.6, tick=0.05)
        monitor.start()
        await asyncio.sleep(0.2)
        steady = monitor.problem()
        time.sleep(0.5)  # blocks the loop, as a wedged handler would  # noqa: ASYNC251
        await asyncio.sleep(0.1)  # the monitor wakes up late and notices
        blocked = monitor.problem()
        await asyncio.sleep(0.8)  # past the window
        after = monitor.problem()
        await monitor.stop()
        return steady, blocked, after

    steady, blocked, after = asyncio.run(scenario())
    assert steady is None
    assert blocked is not None
    assert blocked.startswith("the event loop was blocked for ")
    assert after is None


@pytest.mark.parametrize("started", [False, True])
def test_a_monitor_that_does_not_run_is_a_problem(started: bool) -> None:
    monitor = LoopMonitor(max_lag=0.1, tick=0.05)
    if not started:
        assert monitor.problem() == "the event loop monitor has not started"
        return

    async def scenario() -> str | None:
        monitor.start()
        await monitor.stop()  # its task is gone: nothing ticks any more
        await asyncio.sleep(0.3)
        return monitor.problem()

    problem = asyncio.run(scenario())
    assert problem is not None
    assert "has not run its monitor" in problem
