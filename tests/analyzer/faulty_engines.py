"""Fault-injecting engines for the isolation tests, selected through the analyzer's ENGINE
setting (same signature as analyzer.engine.analyze_video). They run in the job's child
process, started with the repository root on PYTHONPATH."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from analyzer.engine import AnalysisResult, analyze_video

Progress = Callable[[float], None] | None


def allocate_forever(
    path: Path, analysis_type: str, *, progress: Progress = None
) -> AnalysisResult:
    """Touches 32 MiB more every few milliseconds until something stops it."""
    hoard: list[bytearray] = []
    while True:
        hoard.append(bytearray(b"\x01" * (32 * 2**20)))
        time.sleep(0.005)


def allocate_at_once(
    path: Path, analysis_type: str, *, progress: Progress = None
) -> AnalysisResult:
    """One allocation far above any cap, faster than any RSS poll."""
    hoard = bytearray(64 * 2**30)
    raise AssertionError(f"allocated {len(hoard)} bytes unexpectedly")


def sleep_forever(path: Path, analysis_type: str, *, progress: Progress = None) -> AnalysisResult:
    while True:
        time.sleep(1)


def crash(path: Path, analysis_type: str, *, progress: Progress = None) -> AnalysisResult:
    os.kill(os.getpid(), signal.SIGSEGV)
    raise AssertionError("unreachable")


def slow_then_real(path: Path, analysis_type: str, *, progress: Progress = None) -> AnalysisResult:
    """Spends SLOW_ENGINE_SECONDS reporting progress, then runs the real engine."""
    seconds = float(os.environ.get("SLOW_ENGINE_SECONDS", "6"))
    steps = max(1, int(seconds / 0.25))
    for step in range(steps):
        time.sleep(seconds / steps)
        if progress is not None:
            progress(0.5 * (step + 1) / steps)
    return analyze_video(path, analysis_type, progress=progress)  # type: ignore[arg-type]


_BY_NAME: dict[str, Callable[..., AnalysisResult]] = {
    "hog": allocate_forever,
    "burst": allocate_at_once,
    "sleep": sleep_forever,
    "crash": crash,
    "slow": slow_then_real,
}


def by_file_name(path: Path, analysis_type: str, *, progress: Progress = None) -> AnalysisResult:
    """One analyzer process serves every scenario: the video's file name picks the fault
    (`hog-1.mp4` allocates without bound, ...); other names run the real engine."""
    stem = Path(path).name
    for marker, engine in _BY_NAME.items():
        if stem.startswith(marker):
            return engine(path, analysis_type, progress=progress)
    return analyze_video(path, analysis_type, progress=progress)  # type: ignore[arg-type]
