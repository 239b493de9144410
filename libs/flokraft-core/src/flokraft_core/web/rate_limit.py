"""Per-user rate limits (per client IP for requests that fail auth), via `limits`.

Storage is in memory by default; with a redis:// URI every replica shares the counters.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many, storage
from limits.strategies import MovingWindowRateLimiter

from flokraft_core.web.errors import ApiError


class RateLimiter:
    def __init__(self, rate: str, storage_uri: str, namespace: str) -> None:
        self._items: list[RateLimitItem] = parse_many(rate)
        self._limiter = MovingWindowRateLimiter(storage.storage_from_string(storage_uri))
        self._namespace = namespace
        self.description = rate

    def hit(self, key: str) -> None:
        """Counts one request for `key`, or raises 429 with Retry-After."""
        for item in self._items:
            if not self._limiter.hit(item, self._namespace, key):
                stats = self._limiter.get_window_stats(item, self._namespace, key)
                retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                raise ApiError(
                    429,
                    "rate_limited",
                    f"too many requests: the limit is {item}; retry in {retry_after} s",
                    headers={"Retry-After": str(retry_after)},
                )

    def reset(self) -> None:
        self._limiter.storage.reset()
