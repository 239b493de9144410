"""The analysis result handed back to the worker."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AnalysisResult:
    total_score: float  # 0..100, rounded to 1 decimal
    tempo_bpm: float | None  # None if no clear tempo
    sync_score: float | None  # 0..1 for couple, None for solo
    smoothness: float  # 0..1
    floor_usage: float  # 0..1
    motion_energy: list[float]  # per-second mean motion energy, at most 600 points
    frames_analysed: int
    duration_seconds: float
    text: str  # readable report shown to the dancer
    tempo_confidence: float = 0.0  # 0..1, regularity of the detected pulse
    motion_energy_seconds_per_point: float = 1.0  # >1 when the timeline was downsampled

    def metrics(self) -> dict[str, object]:
        """The figures as a JSON-able dict (the text report is not included)."""
        return {
            "total_score": self.total_score,
            "tempo_bpm": self.tempo_bpm,
            "tempo_confidence": self.tempo_confidence,
            "sync_score": self.sync_score,
            "smoothness": self.smoothness,
            "floor_usage": self.floor_usage,
            "motion_energy": list(self.motion_energy),
            "motion_energy_seconds_per_point": self.motion_energy_seconds_per_point,
            "frames_analysed": self.frames_analysed,
            "duration_seconds": self.duration_seconds,
        }
