"""How synchronised the two dancers of a couple are."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

# Real partners react to each other with a small delay; allow up to this much lag.
MAX_LAG_SECONDS = 0.2


def _pearson(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    if denom <= 1e-12:
        return 0.0
    return float((a * b).sum()) / denom


def sync_score(left: NDArray[np.float64], right: NDArray[np.float64], sample_rate: float) -> float:
    """Max Pearson correlation of the two motion-energy timelines over lags of +-0.2 s.

    Clipped to 0..1: moving in anti-phase is as "unsynchronised" as moving independently.
    """
    n = min(len(left), len(right))
    max_lag = max(1, round(MAX_LAG_SECONDS * sample_rate))
    if n < 2 * max_lag + 3:
        return 0.0
    left, right = left[:n], right[:n]
    best = -1.0
    for lag in range(-max_lag, max_lag + 1):
        if lag >= 0:
            r = _pearson(left[lag:], right[: n - lag])
        else:
            r = _pearson(left[: n + lag], right[-lag:])
        best = max(best, r)
    return float(np.clip(best, 0.0, 1.0))
