"""Crash recovery, graceful shutdown, dead letters and liveness of the analyzer process."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import psutil

from flokraft_devstack.probes import metric_value
from flokraft_devstack.processes import ManagedProcess
from tests.analyzer.conftest import JobWorld, analyzer_env, video_named


def assert_orderly_exit(process: ManagedProcess, code: int | None) -> None:
    # uvicorn re-raises the signal it handled once its shutdown is complete.
    assert code in (0, -signal.SIGTERM), process.tail()
    assert '"event": "worker_stopped"' in process.tail(), process.tail()


def _children(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def test_kill_9_mid_job_is_redelivered_and_completes_exactly_once(
    world: JobWorld, video_dir: Path, dance_video: Path, start_analyzer
) -> None:
    env = analyzer_env(world, video_dir, SLOW_ENGINE_SECONDS="6")
    first = start_analyzer(env)
    analysis_id = world.create(video_named(video_dir, dance_video, "slow-kill.mp4").as_uri())
    world.publish(analysis_id)
    world.wait_for(
        analysis_id, lambda d: d["status"] == "running" and d["progress"] > 0, process=first
    )
    children = _children(first.process.pid)
    assert children, "the job's child process should be running"

    # SIGKILL to the worker's process group. The child has a group of its own (so a
    # group-wide SIGTERM cannot end it) and must die through PR_SET_PDEATHSIG.
    first.kill()
    _gone, alive = psutil.wait_procs(children, timeout=5)
    assert not alive
    assert world.get(analysis_id)["status"] == "running"  # nobody could clean up

    second = start_analyzer(env)
    done = world.wait_status(analysis_id, "done", timeout=90, process=second)
    assert done["attempts"] == 2
    assert done["completions"] == 1
    time.sleep(3)  # a second completion would land here if the message came back again
    assert world.get(analysis_id)["completions"] == 1
    assert metric_value(second.url, "analyzer_jobs_total", outcome="done") == 1


def test_sigterm_lets_the_running_job_finish_within_the_grace_period(
    world: JobWorld, video_dir: Path, dance_video: Path, start_analyzer
) -> None:
    env = analyzer_env(world, video_dir, SLOW_ENGINE_SECONDS="3", SHUTDOWN_GRACE_SECONDS="60")
    analyzer = start_analyzer(env)
    analysis_id = world.create(video_named(video_dir, dance_video, "slow-term.mp4").as_uri())
    world.publish(analysis_id)
    world.wait_status(analysis_id, "running", process=analyzer)

    code = analyzer.stop(signal.SIGTERM, timeout=60)
    assert_orderly_exit(analyzer, code)
    done = world.get(analysis_id)
    assert done["status"] == "done"
    assert done["completions"] == 1


def test_sigterm_past_the_grace_period_gives_the_job_back(
    world: JobWorld, video_dir: Path, dance_video: Path, start_analyzer
) -> None:
    env = analyzer_env(world, video_dir, SLOW_ENGINE_SECONDS="20", SHUTDOWN_GRACE_SECONDS="1")
    analyzer = start_analyzer(env)
    analysis_id = world.create(video_named(video_dir, dance_video, "slow-grace.mp4").as_uri())
    world.publish(analysis_id)
    world.wait_status(analysis_id, "running", process=analyzer)
    children = _children(analyzer.process.pid)

    started = time.monotonic()
    code = analyzer.stop(signal.SIGTERM, timeout=30)
    assert_orderly_exit(analyzer, code)
    assert time.monotonic() - started < 15
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    back = world.get(analysis_id)
    assert back["status"] == "queued"
    assert back["error"] == "the worker shut down during the analysis"
    assert back["lease_owner"] is None

    successor = start_analyzer({**env, "SLOW_ENGINE_SECONDS": "1"})
    done = world.wait_status(analysis_id, "done", timeout=60, process=successor)
    assert done["attempts"] == 2
    assert done["completions"] == 1


def test_dead_letters_end_the_analysis_as_failed(
    world: JobWorld, video_dir: Path, dance_video: Path, start_analyzer
) -> None:
    analyzer = start_analyzer(analyzer_env(world, video_dir))
    stuck = world.create(
        dance_video.as_uri(),
        status="running",
        attempts=5,
        error="the analysis crashed (exit status 1)",
    )
    finished = world.create(dance_video.as_uri(), status="done", processed=True, total_score=80.0)
    rerun = world.create(dance_video.as_uri(), generation=3)
    for analysis_id, generation in ((stuck, 1), (finished, 1), (rerun, 2)):
        data = f'{{"analysis_id": "{analysis_id}", "generation": {generation}, '
        data += '"requested_by": "user1", "requested_at": "2025-01-01T00:00:00Z"}'
        world.publish_raw(data.encode(), topic="analysis-jobs-dead-letter")

    failed = world.wait_status(stuck, "failed", process=analyzer)
    assert failed["error"] == "gave up after 5 attempts: the analysis crashed (exit status 1)"
    deadline = time.monotonic() + 20
    while metric_value(analyzer.url, "analyzer_dead_letters_total") < 3:
        assert time.monotonic() < deadline, analyzer.tail()
        time.sleep(0.2)
    assert world.get(finished)["status"] == "done"
    assert world.get(rerun)["status"] == "queued"


def test_healthz_follows_the_pull_loop_not_the_port(
    world: JobWorld, video_dir: Path, start_analyzer
) -> None:
    healthy = start_analyzer(analyzer_env(world, video_dir))
    assert httpx.get(healthy.url + "/healthz", timeout=5).json() == {"status": "alive"}

    # A subscription that does not exist ends the streaming pull: the port stays open,
    # the heartbeat stops and liveness must say so.
    broken = start_analyzer(
        analyzer_env(world, video_dir, PUBSUB_SUBSCRIPTION="no-such-subscription"), ready=False
    )
    deadline = time.monotonic() + 30
    response = httpx.get(broken.url + "/healthz", timeout=5)
    while response.status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.3)
        response = httpx.get(broken.url + "/healthz", timeout=5)
    assert response.status_code == 503, broken.tail()
    assert response.json()["status"] == "dead"
    ready = httpx.get(broken.url + "/readyz", timeout=10)
    assert ready.status_code == 503
    assert "pull loop" in ready.json()["checks"]["worker"]
    # The background check says why, in the body (and flokraft_dependency_up).
    assert ready.json()["dependencies"]["subscription"] != "ok"
    assert ready.json()["dependencies"]["firestore"] == "ok"
