"""Tempo (BPM) of the movement from the motion-energy timeline.

Method: detrend the energy (subtract a 2 s moving average), take its normalised
autocorrelation, pick the strongest lag in the allowed BPM range, then refine the period
from the peaks at 1, 2, 3, ... times that lag (parabolic sub-sample interpolation of each,
least-squares fit through the origin). Using many multiples turns a +-0.5 frame peak
uncertainty into a small fraction of a frame, which is what makes +-3 BPM feasible at 30 fps.

Octave errors: a pulse train's autocorrelation is as high at 2x, 3x the period as at the
period itself. We therefore take the *shortest* lag whose peak is nearly as strong as the
strongest one, i.e. the fundamental pulse rate. (Half the period is not a peak for a pulse
train, so this does not double the tempo spuriously.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

MIN_BPM = 60.0
MAX_BPM = 200.0
# Peaks within this fraction of the strongest one count as equally good candidates.
OCTAVE_TOLERANCE = 0.85
# Below this autocorrelation the signal has no clear periodic pulse.
MIN_CONFIDENCE = 0.2
DETREND_SECONDS = 2.0
# Use lag multiples up to this long for the refinement.
REFINE_SECONDS = 10.0


@dataclass(frozen=True)
class TempoEstimate:
    bpm: float | None
    confidence: float  # autocorrelation at the beat period, 0..1


def _moving_average(x: NDArray[np.float64], window: int) -> NDArray[np.float64]:
    if window <= 1:
        return x.copy()
    kernel = np.ones(window) / window
    # Edge-normalised so the ends are not pulled towards zero.
    num = np.convolve(x, kernel, mode="same")
    den = np.convolve(np.ones_like(x), kernel, mode="same")
    result: NDArray[np.float64] = num / den
    return result


def autocorrelation(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Biased, normalised autocorrelation (acf[0] == 1) via FFT."""
    n = len(x)
    size = 1 << (2 * n - 1).bit_length()
    spectrum = np.fft.rfft(x, size)
    acf = np.fft.irfft(spectrum * np.conj(spectrum), size)[:n]
    if acf[0] <= 0:
        return np.zeros(n)
    normalised: NDArray[np.float64] = acf / acf[0]
    return normalised


def _parabolic_peak(acf: NDArray[np.float64], i: int) -> float:
    if i <= 0 or i >= len(acf) - 1:
        return float(i)
    a, b, c = acf[i - 1], acf[i], acf[i + 1]
    denom = a - 2 * b + c
    if denom >= 0:  # not a maximum; keep the integer lag
        return float(i)
    return float(i + 0.5 * (a - c) / denom)


def _local_maxima(acf: NDArray[np.float64], lo: int, hi: int) -> list[int]:
    return [
        i
        for i in range(max(lo, 1), min(hi, len(acf) - 2) + 1)
        if acf[i] >= acf[i - 1] and acf[i] >= acf[i + 1]
    ]


def _refine_period(acf: NDArray[np.float64], lag: int, max_lag: int) -> float:
    period = float(lag)
    num = den = 0.0
    k = 1
    while k * period <= max_lag:
        expected = k * period
        half_width = max(1, round(0.15 * period))
        lo = max(1, round(expected) - half_width)
        hi = min(len(acf) - 2, round(expected) + half_width)
        if lo > hi:
            break
        i = lo + int(np.argmax(acf[lo : hi + 1]))
        num += k * _parabolic_peak(acf, i)
        den += k * k
        period = num / den  # feeds a better prediction for the next multiple
        k += 1
    return period


def estimate_tempo(
    energy: NDArray[np.float64],
    sample_rate: float,
    min_bpm: float = MIN_BPM,
    max_bpm: float = MAX_BPM,
) -> TempoEstimate:
    """Estimate the dominant pulse rate of ``energy`` sampled at ``sample_rate`` Hz."""
    min_lag = int(np.floor(60.0 * sample_rate / max_bpm))
    max_lag = int(np.ceil(60.0 * sample_rate / min_bpm))
    # Need a few periods of the slowest tempo and an intra-beat resolution of >= 2 samples.
    if sample_rate <= 0 or len(energy) < 3 * max_lag or min_lag < 2:
        return TempoEstimate(None, 0.0)
    window = max(1, round(DETREND_SECONDS * sample_rate))
    x = energy - _moving_average(energy, window)
    if not np.any(np.abs(x) > 1e-9):
        return TempoEstimate(None, 0.0)
    acf = autocorrelation(x)
    peaks = _local_maxima(acf, min_lag, max_lag)
    if not peaks:
        return TempoEstimate(None, 0.0)
    best = max(acf[i] for i in peaks)
    lag = min(i for i in peaks if acf[i] >= OCTAVE_TOLERANCE * best)
    confidence = float(np.clip(acf[lag], 0.0, 1.0))
    if confidence < MIN_CONFIDENCE:
        return TempoEstimate(None, confidence)
    refine_max = min(len(acf) // 2, int(REFINE_SECONDS * sample_rate))
    period = _refine_period(acf, lag, max(refine_max, lag))
    bpm = 60.0 * sample_rate / period
    if not min_bpm * 0.97 <= bpm <= max_bpm * 1.03:
        return TempoEstimate(None, confidence)
    return TempoEstimate(round(bpm, 1), round(confidence, 3))
