"""Per-frame motion features, accumulated in O(1) memory per frame.

Motion is measured on consecutive downscaled grayscale frames:

* energy: mean absolute grey-level difference (0..255) above a small noise floor, of the
  whole frame and of each dancer region, kept as per-frame timelines (the only state that
  grows, and DecimatingTimeline caps it);
* a motion mask (pixels whose difference exceeds PIXEL_THRESHOLD) from which we take the
  motion centroid of each region (for smoothness) and the coarse floor grid (for floor use).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from analyzer.engine.timeline import DecimatingTimeline

# Per-pixel differences up to this many grey levels are treated as codec/sensor noise and do
# not count towards energy. Without it, a still shot still "pulses" at the keyframe interval
# (every I-frame shifts the noise pattern), which the tempo estimator happily reports.
NOISE_FLOOR = 4
# Grey-level change that counts as motion rather than sensor/compression noise.
PIXEL_THRESHOLD = 15
# A centroid from fewer moving pixels than this fraction of the region is mostly noise.
MIN_CENTROID_FRACTION = 0.002
# Floor grid: cells are "used" once they saw motion in at least MIN_CELL_FRAMES frames, each
# time covering at least MIN_CELL_COVERAGE of the cell. The frame count filters out
# single-frame glitches (a compression burst, a flash).
GRID_COLUMNS = 16
GRID_ROWS = 9
MIN_CELL_COVERAGE = 0.05
MIN_CELL_FRAMES = 3
# Smoothness = exp(-jerk_ratio / JERK_SCALE). The ratio mean|third difference| /
# mean|first difference| of the centroid path is ~3.2 (sqrt(20/2)) for white-noise jitter
# and ~(2*pi/period)**2, i.e. near 0, for slow smooth paths; scale 1 maps jitter to ~0.04.
JERK_SCALE = 1.0
MIN_JERK_SAMPLES = 10


class JerkTracker:
    """Running jerk statistics of a 2-D path that may have gaps; keeps only 4 points."""

    def __init__(self) -> None:
        self._recent: deque[tuple[float, float]] = deque(maxlen=4)
        self._speed_sum = 0.0
        self._jerk_sum = 0.0
        self.jerk_samples = 0

    def add(self, point: tuple[float, float] | None) -> None:
        if point is None:
            # A gap (no motion) breaks the path; differences across it would be meaningless.
            self._recent.clear()
            return
        self._recent.append(point)
        if len(self._recent) < 4:
            return
        (x0, y0), (x1, y1), (x2, y2), (x3, y3) = self._recent
        # Only count speed where jerk is counted too, so the ratio compares like with like.
        self._speed_sum += math.hypot(x3 - x2, y3 - y2)
        self._jerk_sum += math.hypot(x3 - 3 * x2 + 3 * x1 - x0, y3 - 3 * y2 + 3 * y1 - y0)
        self.jerk_samples += 1

    def smoothness(self) -> float | None:
        """0..1 (1 = perfectly smooth), or None without enough continuous motion."""
        if self.jerk_samples < MIN_JERK_SAMPLES or self._speed_sum <= 0.0:
            return None
        ratio = self._jerk_sum / self._speed_sum
        return math.exp(-ratio / JERK_SCALE)


@dataclass(frozen=True)
class Region:
    """A vertical band of the frame, [x_start, x_end) in analysis pixels."""

    name: str
    x_start: int
    x_end: int


def regions_for(analysis_type: str, width: int) -> list[Region]:
    """Couples are told apart by position: one dancer per half of the frame."""
    if analysis_type == "couple":
        half = width // 2
        return [Region("left", 0, half), Region("right", half, width)]
    return [Region("whole", 0, width)]


class MotionAccumulator:
    """Consumes grayscale frames one by one and keeps the running motion features."""

    def __init__(self, width: int, height: int, regions: list[Region]) -> None:
        self.width = width
        self.height = height
        self.regions = regions
        self.frames_seen = 0
        self._previous: NDArray[np.int16] | None = None
        self.energy = DecimatingTimeline()
        self.region_energy = {r.name: DecimatingTimeline() for r in regions}
        self._jerk = {r.name: JerkTracker() for r in regions}
        # Centroids in units of the frame height so x and y jerk weigh the same.
        self._xs = np.arange(width, dtype=np.float64) / height
        self._ys = np.arange(height, dtype=np.float64) / height
        self._cell_h = max(1, height // GRID_ROWS)
        self._cell_w = max(1, width // GRID_COLUMNS)
        self._grid_rows = min(GRID_ROWS, height)
        self._grid_cols = min(GRID_COLUMNS, width)
        self._cell_hits = np.zeros((self._grid_rows, self._grid_cols), dtype=np.int64)

    def add_frame(self, pixels: NDArray[np.uint8]) -> None:
        if pixels.shape != (self.height, self.width):
            raise ValueError(f"frame shape {pixels.shape} != {(self.height, self.width)}")
        current = pixels.astype(np.int16)
        previous, self._previous = self._previous, current
        self.frames_seen += 1
        if previous is None:
            return
        diff = np.abs(current - previous)
        moving = diff > PIXEL_THRESHOLD
        excess = diff - NOISE_FLOOR
        np.maximum(excess, 0, out=excess)
        self.energy.append(float(excess.mean()))
        for region in self.regions:
            band = slice(region.x_start, region.x_end)
            self.region_energy[region.name].append(float(excess[:, band].mean()))
            self._jerk[region.name].add(self._centroid(moving[:, band], region.x_start))
        self._update_grid(moving)

    def _centroid(self, mask: NDArray[np.bool_], x_offset: int) -> tuple[float, float] | None:
        count = int(mask.sum())
        if count < max(1.0, MIN_CENTROID_FRACTION * mask.size):
            return None
        cols = mask.sum(axis=0)
        rows = mask.sum(axis=1)
        xs = self._xs[x_offset : x_offset + mask.shape[1]]
        return float(cols @ xs) / count, float(rows @ self._ys) / count

    def _update_grid(self, moving: NDArray[np.bool_]) -> None:
        rows, cols, ch, cw = self._grid_rows, self._grid_cols, self._cell_h, self._cell_w
        cells = moving[: rows * ch, : cols * cw].reshape(rows, ch, cols, cw)
        coverage = cells.mean(axis=(1, 3))
        self._cell_hits += coverage >= MIN_CELL_COVERAGE

    def floor_usage(self) -> float:
        """Fraction of grid cells in which sustained motion was seen."""
        return float((self._cell_hits >= MIN_CELL_FRAMES).mean())

    def smoothness(self) -> float | None:
        """Mean smoothness over regions that had enough continuous motion."""
        values = [s for s in (j.smoothness() for j in self._jerk.values()) if s is not None]
        return float(np.mean(values)) if values else None
