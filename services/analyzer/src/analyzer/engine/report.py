"""The plain-text report shown to the dancer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReportFigures:
    analysis_type: str
    total_score: float
    tempo_bpm: float | None
    tempo_confidence: float
    sync_score: float | None
    smoothness: float | None  # None: not enough continuous motion to judge
    floor_usage: float
    motion_energy: list[float]
    seconds_per_point: float
    frames_analysed: int
    duration_seconds: float


def _tempo_lines(f: ReportFigures) -> tuple[str, str]:
    if f.tempo_bpm is None:
        return (
            "Tempo: no clear tempo detected",
            "We could not find a steady pulse in your movement; try marking the beat more clearly.",
        )
    if f.tempo_confidence >= 0.5:
        verdict = "Your movement follows a clear, steady pulse"
    else:
        verdict = "A pulse is noticeable in your movement, but it is not very steady"
    return (
        f"Tempo: {f.tempo_bpm:.1f} BPM (pulse regularity {f.tempo_confidence:.2f})",
        f"{verdict} at about {f.tempo_bpm:.0f} BPM.",
    )


def _sync_lines(sync: float) -> tuple[str, str]:
    if sync >= 0.8:
        verdict = "You two move very much in sync."
    elif sync >= 0.5:
        verdict = "You move together most of the time, with some drift between you."
    else:
        verdict = "You move largely independently; work on matching each other's timing."
    return f"Synchronisation: {sync:.2f} (1 = moving as one)", verdict


def _smoothness_lines(smoothness: float | None) -> tuple[str, str]:
    if smoothness is None:
        return (
            "Smoothness: not measurable",
            "There was too little continuous movement to judge smoothness.",
        )
    if smoothness >= 0.8:
        verdict = "Your movement is fluid."
    elif smoothness >= 0.5:
        verdict = "Your movement is mostly smooth, with some abrupt changes."
    else:
        verdict = "Your movement looks jerky; aim for more controlled transitions."
    return f"Smoothness: {smoothness:.2f} (1 = perfectly fluid)", verdict


def _floor_lines(floor_usage: float) -> tuple[str, str]:
    if floor_usage >= 0.3:
        verdict = "You make good use of the space."
    elif floor_usage >= 0.12:
        verdict = "You use a moderate part of the space."
    else:
        verdict = "You stay in a small area; try travelling across the floor more."
    return f"Floor usage: {floor_usage * 100:.0f}% of the visible floor", verdict


def _energy_line(f: ReportFigures) -> str:
    if not f.motion_energy:
        return "Energy: no movement data"
    peak = max(range(len(f.motion_energy)), key=f.motion_energy.__getitem__)
    mean = sum(f.motion_energy) / len(f.motion_energy)
    peak_second = peak * f.seconds_per_point
    return (
        f"Energy: average {mean:.2f}, most active around {_clock(peak_second)} "
        f"(peak {f.motion_energy[peak]:.2f})"
    )


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def build_report(f: ReportFigures) -> str:
    kind = "couple dance" if f.analysis_type == "couple" else "solo dance"
    pairs = [_tempo_lines(f)]
    if f.sync_score is not None:
        pairs.append(_sync_lines(f.sync_score))
    pairs.append(_smoothness_lines(f.smoothness))
    pairs.append(_floor_lines(f.floor_usage))
    lines = [
        f"Movement analysis ({kind}, {f.duration_seconds:.1f} s, {f.frames_analysed} frames)",
        "",
        f"Overall score: {f.total_score:.1f} / 100",
        "",
        *(figure for figure, _ in pairs),
        _energy_line(f),
        "",
        "What this means:",
        *(f"- {verdict}" for _, verdict in pairs),
    ]
    return "\n".join(lines)
