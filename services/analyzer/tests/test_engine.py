"""Tests for the movement-analysis engine (analyzer.engine).

Videos are small (320x180, ~12 s) synthetic clips from analyzer.engine.synthetic, generated
once per module, so the whole file runs in a few seconds.
"""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.engine import AnalysisResult, VideoDecodeError, analyze_video
from analyzer.engine.analysis import AnalysisType
from analyzer.engine.features import JerkTracker
from analyzer.engine.scoring import total_score
from analyzer.engine.summary import per_second_energy
from analyzer.engine.synthetic import DancerLayout, write_dance_video
from analyzer.engine.tempo import estimate_tempo
from analyzer.engine.timeline import DecimatingTimeline

SIZE = (320, 180)
SECONDS = 12.0


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


def _video(directory: Path, dancers: DancerLayout, bpm: float, seed: int = 0) -> Path:
    path = directory / f"{dancers}_{bpm:g}_{seed}.mp4"
    if not path.exists():
        write_dance_video(
            path, duration_seconds=SECONDS, bpm=bpm, dancers=dancers, size=SIZE, seed=seed
        )
    return path


# --- tempo -------------------------------------------------------------------------------


@pytest.mark.parametrize("bpm", [90.0, 120.0, 150.0])
@pytest.mark.parametrize("dancers", ["solo", "mirrored"])
def test_tempo_of_known_movement_within_3_bpm(
    video_dir: Path, bpm: float, dancers: DancerLayout
) -> None:
    analysis_type: AnalysisType = "solo" if dancers == "solo" else "couple"
    result = analyze_video(_video(video_dir, dancers, bpm), analysis_type)
    assert result.tempo_bpm is not None
    assert abs(result.tempo_bpm - bpm) <= 3.0


@settings(max_examples=40, deadline=None)
@given(
    bpm=st.floats(min_value=62.0, max_value=195.0),
    phase=st.floats(min_value=0.0, max_value=1.0),
    seed=st.integers(0, 2**16),
)
def test_tempo_estimator_on_pulse_trains(bpm: float, phase: float, seed: int) -> None:
    # One raised-cosine pulse per beat plus noise, at a non-integer period in frames.
    fps = 30.0
    t = np.arange(int(20 * fps)) / fps
    beat_phase = (t * bpm / 60.0 + phase) % 1.0
    pulse = np.where(beat_phase < 0.5, np.sin(2 * math.pi * beat_phase) ** 2, 0.0)
    noise = np.random.default_rng(seed).normal(0.0, 0.15, len(t))
    estimate = estimate_tempo(1.0 + pulse + noise, fps)
    assert estimate.bpm is not None
    assert abs(estimate.bpm - bpm) <= 3.0


def test_no_tempo_in_noise_or_stillness() -> None:
    rng = np.random.default_rng(1)
    assert estimate_tempo(rng.normal(size=600), 30.0).bpm is None
    assert estimate_tempo(np.zeros(600), 30.0).bpm is None


# --- synchronisation ---------------------------------------------------------------------


def test_mirrored_dancers_are_clearly_more_synchronised_than_independent(
    video_dir: Path,
) -> None:
    for seed in (0, 1):
        mirrored = analyze_video(_video(video_dir, "mirrored", 120.0, seed), "couple")
        independent = analyze_video(_video(video_dir, "independent", 120.0, seed), "couple")
        assert mirrored.sync_score is not None
        assert independent.sync_score is not None
        # Measured: mirrored ~1.00, independent 0.02-0.21 over several seeds and tempos.
        assert mirrored.sync_score > 0.9
        assert independent.sync_score < 0.4
        assert mirrored.sync_score > independent.sync_score + 0.5
        assert mirrored.total_score > independent.total_score


# --- result shape, progress, solo ------------------------------------------------------


def test_solo_result_and_progress(video_dir: Path) -> None:
    fractions: list[float] = []
    result = analyze_video(_video(video_dir, "solo", 120.0), "solo", progress=fractions.append)
    assert isinstance(result, AnalysisResult)
    assert result.sync_score is None
    assert 0.0 <= result.total_score <= 100.0
    assert result.total_score == round(result.total_score, 1)
    assert 0.0 <= result.smoothness <= 1.0
    assert 0.0 < result.floor_usage <= 1.0
    assert result.frames_analysed == int(SECONDS * 30)
    assert result.duration_seconds == pytest.approx(SECONDS, abs=0.1)
    assert len(result.motion_energy) == pytest.approx(SECONDS, abs=1)
    assert all(v >= 0 for v in result.motion_energy)
    # Progress: monotonic, at most ~one call per percent, ends at 1.0.
    assert fractions
    assert fractions == sorted(fractions)
    assert fractions[-1] == pytest.approx(1.0)
    assert fractions[-2] >= 0.95
    assert len(fractions) <= 102
    assert all(0.0 <= f <= 1.0 for f in fractions)
    # The text report is readable and carries the figures.
    assert "Overall score" in result.text
    assert f"{result.total_score:.1f}" in result.text
    assert "BPM" in result.text
    assert "Synchronisation" not in result.text
    assert len(result.text.splitlines()) >= 5


def test_metrics_are_json_able(video_dir: Path) -> None:
    import json

    result = analyze_video(_video(video_dir, "mirrored", 120.0), "couple", max_frames=150)
    metrics = result.metrics()
    assert json.loads(json.dumps(metrics)) == metrics
    assert metrics["sync_score"] == result.sync_score
    assert result.frames_analysed == 150
    assert "Synchronisation" in result.text


def test_still_video_scores_low(tmp_path: Path) -> None:
    # A dancer standing still: no tempo, no floor use, near-zero score.
    path = write_dance_video(
        tmp_path / "still.mp4", duration_seconds=4, bpm=1e-3, dancers="solo", size=SIZE
    )
    result = analyze_video(path, "solo")
    assert result.tempo_bpm is None
    assert result.floor_usage == 0.0
    assert result.total_score < 10.0


def test_rejects_unknown_analysis_type(video_dir: Path) -> None:
    with pytest.raises(ValueError, match="analysis type"):
        analyze_video(_video(video_dir, "solo", 120.0), "trio")  # type: ignore[arg-type]


# --- decode errors -----------------------------------------------------------------------


def _assert_decode_error(path: Path) -> None:
    with pytest.raises(VideoDecodeError) as info:
        analyze_video(path, "solo")
    assert str(info.value).startswith("the video could not be decoded: ")


def test_random_bytes_raise_decode_error(tmp_path: Path) -> None:
    path = tmp_path / "random.mp4"
    path.write_bytes(np.random.default_rng(0).bytes(200_000))
    _assert_decode_error(path)


def test_truncated_video_raises_decode_error(video_dir: Path, tmp_path: Path) -> None:
    data = _video(video_dir, "solo", 120.0).read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: len(data) // 2])
    _assert_decode_error(path)


@pytest.mark.parametrize("content", [b"", b"this is not a video\n" * 100])
def test_empty_or_text_file_raises_decode_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    _assert_decode_error(path)


def test_audio_only_file_raises_decode_error(tmp_path: Path) -> None:
    path = tmp_path / "audio.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * 8000)
    with pytest.raises(VideoDecodeError, match="no video stream"):
        analyze_video(path, "solo")


def test_missing_file_raises_decode_error(tmp_path: Path) -> None:
    _assert_decode_error(tmp_path / "missing.mp4")


# --- pure building blocks ----------------------------------------------------------------

unit_or_wild = st.floats(allow_nan=True, allow_infinity=True)


@given(
    rhythm=unit_or_wild,
    smoothness=unit_or_wild,
    floor_usage=unit_or_wild,
    sync=st.none() | unit_or_wild,
)
def test_total_score_is_bounded(
    rhythm: float, smoothness: float, floor_usage: float, sync: float | None
) -> None:
    score = total_score(rhythm=rhythm, smoothness=smoothness, floor_usage=floor_usage, sync=sync)
    assert 0.0 <= score <= 100.0
    assert score == round(score, 1)


def test_total_score_extremes() -> None:
    assert total_score(rhythm=1, smoothness=1, floor_usage=1, sync=1) == 100.0
    assert total_score(rhythm=1, smoothness=1, floor_usage=0.4, sync=None) == 100.0
    assert total_score(rhythm=0, smoothness=0, floor_usage=0, sync=0) == 0.0
    # Better sync never lowers the score.
    low = total_score(rhythm=0.5, smoothness=0.5, floor_usage=0.2, sync=0.1)
    high = total_score(rhythm=0.5, smoothness=0.5, floor_usage=0.2, sync=0.9)
    assert high > low


@settings(max_examples=50)
@given(n=st.integers(0, 5000), capacity=st.sampled_from([2, 8, 64, 1024]))
def test_decimating_timeline_is_bounded_and_keeps_the_mean(n: int, capacity: int) -> None:
    timeline = DecimatingTimeline(capacity)
    for i in range(n):
        timeline.append(float(i % 7))
    assert len(timeline) <= capacity
    stored = timeline.values()
    assert len(stored) == n // timeline.decimation
    if len(stored):
        covered = np.array([i % 7 for i in range(len(stored) * timeline.decimation)], float)
        assert stored.mean() == pytest.approx(covered.mean())


@given(n=st.integers(0, 40_000), rate=st.sampled_from([24.0, 29.97, 30.0, 60.0]))
def test_per_second_energy_is_bounded(n: int, rate: float) -> None:
    points, seconds_per_point = per_second_energy(np.ones(n), rate)
    assert len(points) <= 600
    assert all(p == 1.0 for p in points)
    # Every frame but a rounding remainder of under one frame is covered.
    assert len(points) * seconds_per_point * rate >= n - 1


def test_smoothness_separates_jitter_from_smooth_paths() -> None:
    rng = np.random.default_rng(0)
    jittery, smooth = JerkTracker(), JerkTracker()
    for i in range(300):
        jittery.add((float(rng.normal()), float(rng.normal())))
        smooth.add((math.cos(i / 10), math.sin(i / 10)))
    jitter_value, smooth_value = jittery.smoothness(), smooth.smoothness()
    assert jitter_value is not None
    assert smooth_value is not None
    assert jitter_value < 0.1 < 0.9 < smooth_value
    # Gaps reset the path, and too little continuous motion is "not measurable".
    gappy = JerkTracker()
    for i in range(100):
        gappy.add(None if i % 3 == 0 else (float(i), 0.0))
    assert gappy.smoothness() is None
