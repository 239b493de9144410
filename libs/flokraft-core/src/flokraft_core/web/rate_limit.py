"""Rate limits via `limits`: per user for every authenticated request, and per client
address for failed requests only (see web/guard.py).

Storage is in memory by default; with a redis:// URI every replica shares the counters
(Memorystore in production, a real redis-server in the tests).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Final

from limits import RateLimitItem, parse_many, storage
from limits.strategies import MovingWindowRateLimiter

from flokraft_core.logs import get_logger
from flokraft_core.web.errors import ApiError

log = get_logger(__name__)

# How often the in-memory store drops expired entries.
CLEANUP_SECONDS: Final = 1.0


class MemoryStorage(storage.MemoryStorage):
    """`limits`' in-memory store with its clean-up run at most once a second.

    The library schedules the clean-up (a scan of every key) on a new thread
    (`threading.Timer`) 10 ms after a hit whenever none is pending: under steady traffic
    that is a thread start and a scan for nearly every request, about 5 % of rerun-api's
    CPU per request (cProfile, bench/rerun_bench.py). The clean-up only frees entries
    that have expired; every limit check compares timestamps itself, so running it less
    often changes no decision, it only keeps expired entries up to a second longer."""

    # Overrides the library's private (name-mangled) scheduler, the one thing changed.
    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802
        if not self.timer.is_alive():
            self.timer = threading.Timer(CLEANUP_SECONDS, self._MemoryStorage__expire_events)  # type: ignore[attr-defined]
            self.timer.daemon = True
            self.timer.start()


class RateLimiter:
    def __init__(self, rate: str, storage_uri: str, namespace: str) -> None:
        self._items: list[RateLimitItem] = parse_many(rate)
        store = (
            MemoryStorage()
            if storage_uri == "memory://"
            else storage.storage_from_string(storage_uri)
        )
        self._limiter = MovingWindowRateLimiter(store)
        self._namespace = namespace
        self.description = rate
        # Counters in this process's memory: a hit never waits on the network.
        self.in_memory = storage_uri.startswith("memory://")

    def hit(self, key: str) -> None:
        """Counts one request for `key`, or raises 429 with Retry-After."""
        for item in self._items:
            try:
                allowed = self._limiter.hit(item, self._namespace, key)
            except Exception as exc:
                # A limiter whose store is down must not take the API down with it: the
                # request goes through and the outage is logged (and alerts on logs).
                _store_down(exc)
                return
            if not allowed:
                raise self._refusal(item, key)

    def check(self, key: str) -> None:
        """Raises the 429 that `hit` would, without counting anything."""
        for item in self._items:
            try:
                allowed = self._limiter.test(item, self._namespace, key)
            except Exception as exc:
                _store_down(exc)
                return
            if not allowed:
                raise self._refusal(item, key)

    def record(self, key: str) -> None:
        """Counts one event for `key` (an answer already decided); never raises."""
        for item in self._items:
            try:
                self._limiter.hit(item, self._namespace, key)
            except Exception as exc:
                _store_down(exc)
                return

    def _refusal(self, item: RateLimitItem, key: str) -> ApiError:
        stats = self._limiter.get_window_stats(item, self._namespace, key)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        return ApiError(
            429,
            "rate_limited",
            f"too many requests: the limit is {item}; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )

    def reset(self) -> None:
        self._limiter.storage.reset()


def _store_down(exc: Exception) -> None:
    log.warning("rate_limit_store_unavailable", error=f"{type(exc).__name__}: {exc}")
