"""Per-second summary of the per-frame motion-energy timeline."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

MAX_POINTS = 600


def _bucket_means(values: NDArray[np.float64], edges: NDArray[np.int64]) -> NDArray[np.float64]:
    sums = np.add.reduceat(values, edges[:-1])
    counts = np.diff(edges)
    means: NDArray[np.float64] = sums / counts
    return means


def per_second_energy(
    energy: NDArray[np.float64], sample_rate: float, max_points: int = MAX_POINTS
) -> tuple[list[float], float]:
    """Mean energy per second (or per ``seconds_per_point`` when there would be more than
    ``max_points`` seconds), rounded to 3 decimals. Returns (points, seconds_per_point)."""
    if len(energy) == 0 or sample_rate <= 0:
        return [], 1.0
    seconds = len(energy) / sample_rate
    seconds_per_point = float(max(1, math.ceil(seconds / max_points)))
    step = sample_rate * seconds_per_point
    n_points = max(1, math.ceil(len(energy) / step - 1e-9))
    edges = np.unique(
        np.minimum(np.round(np.arange(n_points + 1) * step), len(energy)).astype(np.int64)
    )
    if edges[-1] != len(energy):
        edges = np.append(edges, len(energy))
    means = _bucket_means(energy, edges)
    return [round(float(v), 3) for v in means], seconds_per_point
