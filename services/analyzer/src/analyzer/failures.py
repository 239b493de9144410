"""Why a job did not produce a result, in words a dancer can read, and whether a retry
can help."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from analyzer.settings import AnalyzerSettings


class FailureKind(StrEnum):
    MEMORY = "memory"
    TIMEOUT = "timeout"
    CRASH = "crash"
    DECODE = "decode"
    SOURCE = "source"
    INVALID = "invalid"
    SHUTDOWN = "shutdown"


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    reason: str
    # A retry cannot change a deterministic outcome (a corrupt file decodes the same way
    # every time), so those end the job at once instead of burning all attempts.
    retryable: bool


def format_memory(limit_mb: int) -> str:
    # GiB only where one decimal says it exactly (1536 -> "1.5 GiB"), MiB otherwise.
    if limit_mb >= 1024 and (limit_mb * 10) % 1024 == 0:
        return f"{limit_mb / 1024:g} GiB"
    return f"{limit_mb} MiB"


def format_duration(seconds: float) -> str:
    if seconds >= 60:
        minutes = seconds / 60
        text = f"{minutes:g}" if round(minutes, 1) == minutes else f"{minutes:.1f}"
        return f"{text} minute" if text == "1" else f"{text} minutes"
    text = f"{seconds:g}"
    return f"{text} second" if text == "1" else f"{text} seconds"


def memory_failure(limit_mb: int) -> Failure:
    return Failure(
        FailureKind.MEMORY, f"needed more than {format_memory(limit_mb)} of memory", True
    )


def timeout_failure(limit_seconds: float) -> Failure:
    return Failure(FailureKind.TIMEOUT, f"took longer than {format_duration(limit_seconds)}", True)


def crash_failure(detail: str) -> Failure:
    return Failure(FailureKind.CRASH, f"the analysis crashed ({detail})", True)


def decode_failure(message: str) -> Failure:
    return Failure(FailureKind.DECODE, message, False)


def source_failure(message: str, *, retryable: bool) -> Failure:
    return Failure(FailureKind.SOURCE, f"the video could not be fetched: {message}", retryable)


def invalid_failure(message: str) -> Failure:
    return Failure(FailureKind.INVALID, message, False)


def shutdown_failure() -> Failure:
    return Failure(FailureKind.SHUTDOWN, "the worker shut down during the analysis", True)


def gave_up(attempts: int, last_error: str | None) -> str:
    last = last_error or "the analysis worker stopped during every attempt"
    return f"gave up after {attempts} attempts: {last}"


def attempt_limit(failure: Failure, settings: AnalyzerSettings) -> int:
    """Attempts before a job with this failure is given up. A video that could not be
    fetched (a host down, too slow) gets fewer: retrying it holds a worker for little
    chance, and a slow-dripping host must not hold one five times over."""
    if failure.kind is FailureKind.SOURCE:
        return min(settings.source_max_attempts, settings.max_attempts)
    return settings.max_attempts
