"""User-readable failure reasons."""

from __future__ import annotations

import pytest

from analyzer.failures import (
    format_duration,
    format_memory,
    gave_up,
    memory_failure,
    timeout_failure,
)


@pytest.mark.parametrize(
    ("mb", "text"), [(1536, "1.5 GiB"), (2048, "2 GiB"), (512, "512 MiB"), (1500, "1500 MiB")]
)
def test_memory_is_said_exactly(mb: int, text: str) -> None:
    assert format_memory(mb) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(900, "15 minutes"), (60, "1 minute"), (90, "1.5 minutes"), (4, "4 seconds"), (1, "1 second")],
)
def test_durations_read_naturally(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_default_limits_give_the_reasons_the_frontend_shows() -> None:
    assert memory_failure(1536).reason == "needed more than 1.5 GiB of memory"
    assert timeout_failure(900).reason == "took longer than 15 minutes"
    assert memory_failure(1536).retryable
    assert timeout_failure(900).retryable


def test_gave_up_names_the_last_error_or_the_silent_worker() -> None:
    assert gave_up(5, "took longer than 15 minutes") == (
        "gave up after 5 attempts: took longer than 15 minutes"
    )
    assert gave_up(5, None).endswith("the analysis worker stopped during every attempt")
