from __future__ import annotations

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
