"""The overall 0..100 score from the individual movement features."""

from __future__ import annotations

import math

# A pulse whose autocorrelation reaches this is treated as fully regular. Clean rhythmic
# movement lands around 0.5-0.9; no rhythm lands below 0.2.
FULL_RHYTHM_CONFIDENCE = 0.6
# Moving through this fraction of the floor grid counts as full use of the space; one
# dancer crossing the frame back and forth typically reaches 0.3-0.4.
FULL_FLOOR_USAGE = 0.4

SOLO_WEIGHTS = {"rhythm": 0.40, "smoothness": 0.35, "floor": 0.25}
COUPLE_WEIGHTS = {"rhythm": 0.30, "sync": 0.30, "smoothness": 0.25, "floor": 0.15}


def _unit(value: float) -> float:
    if math.isnan(value):
        return 0.0
    return min(1.0, max(0.0, value))


def rhythm_component(tempo_found: bool, tempo_confidence: float) -> float:
    """0..1: how clearly the movement follows a steady pulse (0 if none was found)."""
    if not tempo_found:
        return 0.0
    return _unit(tempo_confidence / FULL_RHYTHM_CONFIDENCE)


def total_score(
    *,
    rhythm: float,
    smoothness: float,
    floor_usage: float,
    sync: float | None,
) -> float:
    """Weighted sum of the 0..1 components, scaled to 0..100 and rounded to 0.1.

    With ``floor = min(1, floor_usage / 0.4)`` and every input clipped to 0..1:

    * solo (``sync is None``):
      ``100 * (0.40 * rhythm + 0.35 * smoothness + 0.25 * floor)``
    * couple:
      ``100 * (0.30 * rhythm + 0.30 * sync + 0.25 * smoothness + 0.15 * floor)``

    where ``rhythm = min(1, tempo_confidence / 0.6)`` if a tempo was found, else 0
    (see :func:`rhythm_component`). The weights sum to 1, so the result is in 0..100.
    """
    components = {
        "rhythm": _unit(rhythm),
        "smoothness": _unit(smoothness),
        "floor": _unit(_unit(floor_usage) / FULL_FLOOR_USAGE),
    }
    weights = SOLO_WEIGHTS
    if sync is not None:
        components["sync"] = _unit(sync)
        weights = COUPLE_WEIGHTS
    score = 100.0 * sum(weight * components[name] for name, weight in weights.items())
    return round(min(100.0, max(0.0, score)), 1)
