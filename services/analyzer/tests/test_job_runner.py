"""The child process supervision, in-process against real child processes."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from analyzer.engine.synthetic import write_dance_video
from analyzer.failures import FailureKind
from analyzer.job_runner import JobFailed, JobRunner, JobSucceeded, JobSuperseded
from analyzer.settings import AnalyzerSettings
from analyzer.sources import SourceError, local_video

REPO_ROOT = Path(__file__).resolve().parents[3]
FAULTY = "tests.analyzer.faulty_engines"


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("videos") / "dance.mp4"
    write_dance_video(path, duration_seconds=4, dancers="mirrored", size=(320, 180))
    return path


@pytest.fixture(autouse=True)
def _faulty_engines_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))


def settings_for(video: Path, **overrides: object) -> AnalyzerSettings:
    values: dict[str, object] = {
        "allow_file_urls": True,
        "allowed_file_roots": [video.parent],
        "progress_interval_seconds": 0.2,
        "job_memory_limit_mb": 300,
        "job_timeout_seconds": 20,
    }
    values.update(overrides)
    return AnalyzerSettings.model_validate(values)


def test_real_engine_result_and_throttled_progress(video: Path) -> None:
    reports: list[float] = []
    outcome = JobRunner(settings_for(video)).run(
        video.as_uri(), "solo", on_progress=lambda p: reports.append(p) or True
    )
    assert isinstance(outcome, JobSucceeded)
    assert outcome.metrics["sync_score"] is None
    assert outcome.metrics["frames_analysed"] == 120
    assert outcome.text
    assert 20 * 2**20 < outcome.peak_rss_bytes < 300 * 2**20
    assert reports == sorted(reports)


@pytest.mark.parametrize("engine", ["allocate_forever", "allocate_at_once"])
def test_memory_cap_kills_the_child_not_us(video: Path, engine: str) -> None:
    before = os.getpid()
    outcome = JobRunner(settings_for(video, engine=f"{FAULTY}:{engine}")).run(
        video.as_uri(), "couple", on_progress=lambda p: True
    )
    assert isinstance(outcome, JobFailed)
    assert outcome.failure.kind is FailureKind.MEMORY
    assert outcome.failure.reason == "needed more than 300 MiB of memory"
    assert os.getpid() == before


def test_time_limit(video: Path) -> None:
    settings = settings_for(video, engine=f"{FAULTY}:sleep_forever", job_timeout_seconds=3)
    outcome = JobRunner(settings).run(video.as_uri(), "couple", on_progress=lambda p: True)
    assert isinstance(outcome, JobFailed)
    assert outcome.failure.reason == "took longer than 3 seconds"
    assert outcome.seconds < 10


def test_crash_is_reported_with_its_signal(video: Path) -> None:
    outcome = JobRunner(settings_for(video, engine=f"{FAULTY}:crash")).run(
        video.as_uri(), "couple", on_progress=lambda p: True
    )
    assert isinstance(outcome, JobFailed)
    assert outcome.failure.reason == "the analysis crashed (killed by SIGSEGV)"
    assert outcome.failure.retryable


def test_abort_kills_the_child(video: Path) -> None:
    abort = threading.Event()
    abort.set()
    outcome = JobRunner(settings_for(video, engine=f"{FAULTY}:sleep_forever")).run(
        video.as_uri(), "couple", on_progress=lambda p: True, abort=abort
    )
    assert isinstance(outcome, JobFailed)
    assert outcome.failure.kind is FailureKind.SHUTDOWN


def test_a_job_that_is_no_longer_ours_is_stopped(video: Path) -> None:
    outcome = JobRunner(settings_for(video, engine=f"{FAULTY}:sleep_forever")).run(
        video.as_uri(), "couple", on_progress=lambda p: False
    )
    assert isinstance(outcome, JobSuperseded)


def test_file_urls_stay_below_the_allowed_roots(video: Path, tmp_path: Path) -> None:
    settings = settings_for(video)
    with local_video(video.as_uri(), settings) as path:
        assert path == video.resolve()
    link = video.parent / "escape.mp4"
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(b"x")
    link.unlink(missing_ok=True)
    link.symlink_to(outside)
    for url in (outside.as_uri(), link.as_uri(), video.as_uri().replace("dance", "../x/dance")):
        with pytest.raises(SourceError, match="outside the allowed"), local_video(url, settings):
            pass
    with (
        pytest.raises(SourceError, match="not accepted"),
        local_video(video.as_uri(), settings_for(video, allow_file_urls=False)),
    ):
        pass
