"""analyze_video: stream the video once and turn its motion into an AnalysisResult."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Literal

from analyzer.engine.decode import GrayFrameReader, StreamInfo
from analyzer.engine.errors import VideoDecodeError
from analyzer.engine.features import MotionAccumulator, regions_for
from analyzer.engine.report import ReportFigures, build_report
from analyzer.engine.result import AnalysisResult
from analyzer.engine.scoring import rhythm_component, total_score
from analyzer.engine.summary import per_second_energy
from analyzer.engine.sync import sync_score
from analyzer.engine.tempo import estimate_tempo

AnalysisType = Literal["couple", "solo"]
ProgressCallback = Callable[[float], None]

FALLBACK_FPS = 30.0
PROGRESS_STEP = 0.01


class _Progress:
    """Reports monotonic fractions at most once per PROGRESS_STEP, then 1.0 at the end."""

    def __init__(self, callback: ProgressCallback | None, expected_frames: int | None) -> None:
        self._callback = callback
        self._expected = expected_frames if expected_frames and expected_frames > 0 else None
        self._last = 0.0

    def frame_done(self, frames: int) -> None:
        if self._callback is None or self._expected is None:
            return
        # The container's frame count is an estimate; hold back 1.0 for the real end.
        fraction = min(0.99, frames / self._expected)
        if fraction >= self._last + PROGRESS_STEP:
            self._last = fraction
            self._callback(fraction)

    def finish(self) -> None:
        if self._callback is not None:
            self._last = 1.0
            self._callback(1.0)


def _expected_frames(info: StreamInfo, max_frames: int | None) -> int | None:
    if max_frames is None:
        return info.expected_frames
    if info.expected_frames is None:
        return max_frames
    return min(info.expected_frames, max_frames)


def _frame_rate(info: StreamInfo, frames: int, first: float | None, last: float | None) -> float:
    # Timestamps reflect the real pace even for variable-frame-rate phone videos.
    if first is not None and last is not None and last > first and frames > 1:
        measured = (frames - 1) / (last - first)
        if 1.0 <= measured <= 480.0:
            return measured
    if info.nominal_fps is not None and 1.0 <= info.nominal_fps <= 480.0:
        return info.nominal_fps
    return FALLBACK_FPS


def analyze_video(
    path: str | os.PathLike[str],
    analysis_type: AnalysisType,
    *,
    progress: ProgressCallback | None = None,
    max_frames: int | None = None,
) -> AnalysisResult:
    """Analyse the dance video at ``path`` in a single streaming pass.

    Raises VideoDecodeError (with a message for the dancer) if the file cannot be decoded,
    has no video stream or fewer than two frames.
    """
    if analysis_type not in ("couple", "solo"):
        raise ValueError(f"unknown analysis type {analysis_type!r}")
    if max_frames is not None and max_frames < 2:
        raise ValueError("max_frames must be at least 2")

    accumulator: MotionAccumulator | None = None
    first_time: float | None = None
    last_time: float | None = None
    with GrayFrameReader(path) as reader:
        assert reader.info is not None  # set by __enter__
        info = reader.info
        tracker = _Progress(progress, _expected_frames(info, max_frames))
        for frame in reader.frames(max_frames):
            if accumulator is None:
                height, width = frame.pixels.shape
                accumulator = MotionAccumulator(width, height, regions_for(analysis_type, width))
                first_time = frame.time
            accumulator.add_frame(frame.pixels)
            last_time = frame.time
            tracker.frame_done(accumulator.frames_seen)

    if accumulator is None:
        raise VideoDecodeError.because("the file contains no decodable video frames")
    frames = accumulator.frames_seen
    if frames < 2:
        raise VideoDecodeError.because("the video has a single frame, so no movement")

    fps = _frame_rate(info, frames, first_time, last_time)
    sample_rate = fps / accumulator.energy.decimation
    energy = accumulator.energy.values()
    tempo = estimate_tempo(energy, sample_rate)

    sync: float | None = None
    if analysis_type == "couple":
        sync = round(
            sync_score(
                accumulator.region_energy["left"].values(),
                accumulator.region_energy["right"].values(),
                sample_rate,
            ),
            3,
        )
    measured_smoothness = accumulator.smoothness()
    smoothness = round(measured_smoothness or 0.0, 3)
    floor_usage = round(accumulator.floor_usage(), 3)
    score = total_score(
        rhythm=rhythm_component(tempo.bpm is not None, tempo.confidence),
        smoothness=smoothness,
        floor_usage=floor_usage,
        sync=sync,
    )
    timeline, seconds_per_point = per_second_energy(energy, sample_rate)
    duration = round(frames / fps, 3)
    text = build_report(
        ReportFigures(
            analysis_type=analysis_type,
            total_score=score,
            tempo_bpm=tempo.bpm,
            tempo_confidence=tempo.confidence,
            sync_score=sync,
            smoothness=None if measured_smoothness is None else smoothness,
            floor_usage=floor_usage,
            motion_energy=timeline,
            seconds_per_point=seconds_per_point,
            frames_analysed=frames,
            duration_seconds=duration,
        )
    )
    result = AnalysisResult(
        total_score=score,
        tempo_bpm=tempo.bpm,
        sync_score=sync,
        smoothness=smoothness,
        floor_usage=floor_usage,
        motion_energy=timeline,
        frames_analysed=frames,
        duration_seconds=duration,
        text=text,
        tempo_confidence=tempo.confidence,
        motion_energy_seconds_per_point=seconds_per_point,
    )
    tracker.finish()
    return result
