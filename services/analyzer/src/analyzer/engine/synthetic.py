"""Synthetic dance videos for tests and benchmarks.

A "dancer" is a bright disk on a static textured floor. On every beat it makes one
stroke to its next waypoint (eased in and out over ``STROKE_FRACTION`` of the beat) and
then holds still until the next beat. One beat therefore produces exactly one motion
pulse, which is what the tempo estimator looks for. (A blob oscillating sinusoidally
would produce two speed peaks per cycle and so two pulses per period.)

Frames are rendered and encoded one at a time, so memory does not depend on duration.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import av
import numpy as np
from numpy.typing import NDArray

DancerLayout = Literal["solo", "mirrored", "independent"]

STROKE_FRACTION = 0.5
_FLOOR_LEVEL = 70
_DANCER_LEVEL = 225


@dataclass
class _Dancer:
    """One blob following a beat schedule; its state advances with time, O(1) memory."""

    waypoints: list[tuple[float, float]]
    beat_seconds: float
    phase_seconds: float = 0.0
    jitter: float = 0.0  # relative random variation of each beat's length
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    _beat_index: int = 0
    _beat_start: float = 0.0
    _beat_length: float = 0.0

    def __post_init__(self) -> None:
        self._beat_start = self.phase_seconds
        self._beat_length = self._next_beat_length()

    def _next_beat_length(self) -> float:
        if self.jitter == 0.0:
            return self.beat_seconds
        return self.beat_seconds * (1.0 + float(self.rng.uniform(-self.jitter, self.jitter)))

    def position(self, t: float) -> tuple[float, float]:
        while t >= self._beat_start + self._beat_length:
            self._beat_start += self._beat_length
            self._beat_length = self._next_beat_length()
            self._beat_index += 1
        n = len(self.waypoints)
        x0, y0 = self.waypoints[self._beat_index % n]
        if t < self._beat_start:  # before the first beat (positive phase): stand still
            return x0, y0
        x1, y1 = self.waypoints[(self._beat_index + 1) % n]
        s = min(1.0, (t - self._beat_start) / (self._beat_length * STROKE_FRACTION))
        ease = 0.5 - 0.5 * math.cos(math.pi * s)
        return x0 + (x1 - x0) * ease, y0 + (y1 - y0) * ease


def _floor_texture(width: int, height: int, rng: np.random.Generator) -> NDArray[np.uint8]:
    # A static, mildly textured floor keeps the encoder honest without adding motion.
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    phase = float(rng.uniform(0, 2 * math.pi))
    floor = (
        _FLOOR_LEVEL
        + 20 * ys
        + 8 * np.sin(2 * math.pi * 6 * xs + phase) * np.cos(2 * math.pi * 4 * ys)
    )
    texture: NDArray[np.uint8] = np.clip(floor, 0, 255).astype(np.uint8)
    return texture


def _draw_disk(img: NDArray[np.uint8], cx: float, cy: float, radius: float) -> None:
    h, w = img.shape
    x0, x1 = max(0, int(cx - radius - 1)), min(w, int(cx + radius + 2))
    y0, y1 = max(0, int(cy - radius - 1)), min(h, int(cy + radius + 2))
    if x0 >= x1 or y0 >= y1:
        return
    yy = np.arange(y0, y1, dtype=np.float32)[:, None] - cy
    xx = np.arange(x0, x1, dtype=np.float32)[None, :] - cx
    # Anti-aliased edge so sub-pixel motion still changes pixels smoothly.
    alpha = np.clip(radius + 0.5 - np.sqrt(xx * xx + yy * yy), 0.0, 1.0)
    patch = img[y0:y1, x0:x1].astype(np.float32)
    img[y0:y1, x0:x1] = (patch + (_DANCER_LEVEL - patch) * alpha).astype(np.uint8)


def _random_waypoints(
    rng: np.random.Generator, x_range: tuple[float, float], y_range: tuple[float, float], n: int
) -> list[tuple[float, float]]:
    return [(float(rng.uniform(*x_range)), float(rng.uniform(*y_range))) for _ in range(n)]


def _make_dancers(
    layout: DancerLayout, width: int, height: int, bpm: float, rng: np.random.Generator
) -> list[_Dancer]:
    beat = 60.0 / bpm
    ys = (0.25 * height, 0.75 * height)
    if layout == "solo":
        return [_Dancer(_random_waypoints(rng, (0.15 * width, 0.85 * width), ys, 6), beat)]
    left_xs = (0.1 * width, 0.4 * width)
    left = _Dancer(_random_waypoints(rng, left_xs, ys, 4), beat)
    if layout == "mirrored":
        mirrored = [(width - 1 - x, y) for x, y in left.waypoints]
        return [left, _Dancer(mirrored, beat)]
    # Independent: an incommensurate tempo, random phase and per-beat jitter, so the
    # right dancer's pulses drift freely against the left one's.
    other_beat = 60.0 / (bpm * math.sqrt(0.5) * float(rng.uniform(0.95, 1.05)))
    right_xs = (0.6 * width, 0.9 * width)
    right = _Dancer(
        _random_waypoints(rng, right_xs, ys, 4),
        other_beat,
        phase_seconds=float(rng.uniform(0, other_beat)),
        jitter=0.2,
        rng=rng,
    )
    return [left, right]


def write_dance_video(
    path: str | os.PathLike[str],
    *,
    duration_seconds: float,
    bpm: float = 120.0,
    dancers: DancerLayout = "solo",
    fps: int = 30,
    size: tuple[int, int] = (640, 360),
    seed: int = 0,
) -> Path:
    """Encode a synthetic dance video (MPEG-4 Part 2) to ``path`` and return the path.

    ``size`` is (width, height); both must be even because of yuv420p chroma subsampling.
    """
    width, height = size
    if width % 2 or height % 2:
        raise ValueError(f"size must be even, got {width}x{height}")
    if duration_seconds <= 0 or fps <= 0 or bpm <= 0:
        raise ValueError("duration_seconds, fps and bpm must be positive")
    rng = np.random.default_rng(seed)
    cast = _make_dancers(dancers, width, height, bpm, rng)
    radius = 0.08 * height
    floor = _floor_texture(width, height, rng)
    # One reusable yuv420p buffer: luma on top, neutral chroma below. from_ndarray copies.
    yuv = np.full((height * 3 // 2, width), 128, dtype=np.uint8)
    luma = yuv[:height]
    n_frames = max(1, round(duration_seconds * fps))
    out = Path(path)
    with av.open(str(out), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        # ~0.1 bit per pixel keeps blocking artefacts well below the dancers' contrast.
        stream.bit_rate = max(400_000, int(width * height * fps * 0.1))
        for i in range(n_frames):
            t = i / fps
            np.copyto(luma, floor)
            for dancer in cast:
                cx, cy = dancer.position(t)
                _draw_disk(luma, cx, cy, radius)
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out
