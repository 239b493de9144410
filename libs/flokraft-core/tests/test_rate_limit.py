from __future__ import annotations

import threading
import time

import pytest

from flokraft_core.web.errors import ApiError
from flokraft_core.web.rate_limit import RateLimiter


def test_limit_is_per_key_and_answers_429_with_retry_after() -> None:
    limiter = RateLimiter("3/minute", "memory://", "test")
    for _ in range(3):
        limiter.hit("user:alice")
    with pytest.raises(ApiError) as info:
        limiter.hit("user:alice")
    assert info.value.status == 429
    assert 1 <= int(info.value.headers["Retry-After"]) <= 60
    limiter.hit("user:bob")  # another user is not affected


def test_several_windows_all_apply() -> None:
    limiter = RateLimiter("100/minute;2/second", "memory://", "test")
    limiter.hit("k")
    limiter.hit("k")
    with pytest.raises(ApiError):
        limiter.hit("k")


def test_the_in_memory_store_starts_no_thread_per_hit(monkeypatch: pytest.MonkeyPatch) -> None:
    # `limits` schedules its clean-up on a new thread 10 ms after a hit: under traffic a
    # thread per request. Ours starts at most one per CLEANUP_SECONDS.
    started: list[threading.Thread] = []
    start = threading.Thread.start

    def counting(thread: threading.Thread) -> None:
        started.append(thread)
        start(thread)

    limiter = RateLimiter("100000/minute", "memory://", "test")
    monkeypatch.setattr(threading.Thread, "start", counting)
    for n in range(200):
        limiter.hit(f"user:{n % 10}")
        time.sleep(0.001)
    assert len(started) <= 1
    # Expired entries still go, and limits still hold.
    tight = RateLimiter("2/second", "memory://", "test")
    tight.hit("k")
    tight.hit("k")
    with pytest.raises(ApiError):
        tight.hit("k")
    time.sleep(1.1)
    tight.hit("k")
