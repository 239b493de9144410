"""The analyzer end to end: real process, real emulators, real client libraries."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from flokraft_devstack.probes import metric_value
from tests.analyzer.conftest import (
    MAX_ATTEMPTS,
    JobWorld,
    analyzer_env,
    video_named,
)


def test_job_runs_to_done_with_result_and_progress(
    world: JobWorld, video_dir: Path, dance_video: Path, start_analyzer
) -> None:
    analyzer = start_analyzer(analyzer_env(world, video_dir, SLOW_ENGINE_SECONDS="3"))
    video = video_named(video_dir, dance_video, "slow-ok.mp4")
    analysis_id = world.create(video.as_uri())
    world.publish(analysis_id)

    running = world.wait_for(
        analysis_id,
        lambda d: d["status"] == "running" and 0 < d["progress"] < 1,
        process=analyzer,
    )
    assert running["attempts"] == 1
    assert running["lease_owner"]
    done = world.wait_status(analysis_id, "done", process=analyzer)

    assert done["processed"] is True
    assert done["progress"] == 1.0
    assert done["error"] is None
    assert 0 <= done["total_score"] <= 100
    assert done["total_score"] == done["metrics"]["total_score"]
    assert done["metrics"]["frames_analysed"] > 100
    assert done["metrics"]["sync_score"] is not None
    assert "score" in done["text"].lower()
    assert done["completions"] == 1
    assert done["completed_generation"] == 1
    assert done["lease_owner"] is None
    assert metric_value(analyzer.url, "analyzer_jobs_total", outcome="done") == 1
    assert metric_value(analyzer.url, "analyzer_job_peak_memory_bytes_count") == 1
    assert metric_value(analyzer.url, "analyzer_worker_rss_bytes") > 10 * 2**20
    ready = httpx.get(analyzer.url + "/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["checks"].values()) == {"ok"}
    assert ready.json()["dependencies"] == {"firestore": "ok", "subscription": "ok"}


def test_stale_generation_is_acked_and_ignored(
    world: JobWorld, video_dir: Path, dance_video: Path, start_analyzer
) -> None:
    analyzer = start_analyzer(analyzer_env(world, video_dir))
    analysis_id = world.create(dance_video.as_uri(), generation=2)
    world.publish(analysis_id, generation=1)
    world.publish(analysis_id, generation=2)

    done = world.wait_status(analysis_id, "done", process=analyzer)
    assert done["completed_generation"] == 2
    assert done["completions"] == 1
    assert done["attempts"] == 1
    assert metric_value(analyzer.url, "analyzer_jobs_total", outcome="stale") == 1


def test_invalid_message_is_acked_and_fails_its_analysis(
    world: JobWorld, video_dir: Path, dance_video: Path, start_analyzer
) -> None:
    analyzer = start_analyzer(analyzer_env(world, video_dir))
    analysis_id = world.create(dance_video.as_uri())
    world.publish_raw(f'{{"analysis_id": "{analysis_id}", "generation": "x"}}'.encode())
    world.publish_raw(b"not json at all")

    failed = world.wait_status(analysis_id, "failed", process=analyzer)
    assert failed["error"].startswith("the analysis request was invalid")
    assert failed["attempts"] == 0
    count = 0.0
    for _ in range(100):
        count = metric_value(analyzer.url, "analyzer_invalid_messages_total")
        if count == 2:
            break
        time.sleep(0.1)
    assert count == 2


def test_corrupt_video_fails_at_once_with_decode_reason(
    world: JobWorld, video_dir: Path, start_analyzer
) -> None:
    analyzer = start_analyzer(analyzer_env(world, video_dir))
    corrupt = video_dir / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 1000)
    analysis_id = world.create(corrupt.as_uri())
    world.publish(analysis_id)

    failed = world.wait_status(analysis_id, "failed", process=analyzer)
    assert failed["error"].startswith("the video could not be decoded")
    assert failed["attempts"] == 1
    assert failed["processed"] is False


def test_file_outside_allowed_roots_is_refused(
    world: JobWorld, video_dir: Path, dance_video: Path, start_analyzer, tmp_path: Path
) -> None:
    analyzer = start_analyzer(analyzer_env(world, video_dir))
    outside = tmp_path / "elsewhere.mp4"
    outside.write_bytes(dance_video.read_bytes())
    analysis_id = world.create(outside.as_uri())
    world.publish(analysis_id)

    failed = world.wait_status(analysis_id, "failed", process=analyzer)
    assert failed["error"] == (
        "the video could not be fetched: the file is outside the allowed directories"
    )
    assert failed["attempts"] == 1


def test_memory_hog_is_killed_worker_survives_and_next_job_completes(
    world: JobWorld, video_dir: Path, dance_video: Path, start_analyzer
) -> None:
    analyzer = start_analyzer(analyzer_env(world, video_dir, JOB_MEMORY_LIMIT_MB="300"))
    worker_pid = analyzer.process.pid
    hog = world.create(video_named(video_dir, dance_video, "hog-1.mp4").as_uri())
    burst = world.create(video_named(video_dir, dance_video, "burst-1.mp4").as_uri())
    good = world.create(dance_video.as_uri())
    for analysis_id in (hog, burst, good):
        world.publish(analysis_id)

    failed = world.wait_status(hog, "failed", timeout=120, process=analyzer)
    assert failed["error"] == "needed more than 300 MiB of memory"
    assert failed["attempts"] == MAX_ATTEMPTS
    failed_burst = world.wait_status(burst, "failed", timeout=120, process=analyzer)
    assert failed_burst["error"] == "needed more than 300 MiB of memory"
    assert failed_burst["attempts"] == MAX_ATTEMPTS
    done = world.wait_status(good, "done", timeout=120, process=analyzer)
    assert done["completions"] == 1

    assert analyzer.alive()
    assert analyzer.process.pid == worker_pid
    assert httpx.get(analyzer.url + "/healthz", timeout=5).status_code == 200
    assert metric_value(analyzer.url, "analyzer_child_kills_total", reason="memory") >= MAX_ATTEMPTS
    assert metric_value(analyzer.url, "analyzer_jobs_total", outcome="retried") >= 2 * (
        MAX_ATTEMPTS - 1
    )


def test_time_limit_and_crash_end_failed_with_readable_reasons(
    world: JobWorld, video_dir: Path, dance_video: Path, start_analyzer
) -> None:
    analyzer = start_analyzer(analyzer_env(world, video_dir, JOB_TIMEOUT_SECONDS="4"))
    sleeper = world.create(video_named(video_dir, dance_video, "sleep-1.mp4").as_uri())
    crasher = world.create(video_named(video_dir, dance_video, "crash-1.mp4").as_uri())
    world.publish(sleeper)
    world.publish(crasher)

    slow = world.wait_status(sleeper, "failed", timeout=120, process=analyzer)
    assert slow["error"] == "took longer than 4 seconds"
    assert slow["attempts"] == MAX_ATTEMPTS
    crashed = world.wait_status(crasher, "failed", timeout=120, process=analyzer)
    assert crashed["error"] == "the analysis crashed (killed by SIGSEGV)"
    assert crashed["attempts"] == MAX_ATTEMPTS
    assert (
        metric_value(analyzer.url, "analyzer_child_kills_total", reason="timeout") == MAX_ATTEMPTS
    )
