"""A single timer thread for lease expiry and retry back-off.

One thread with a heap instead of a ``threading.Timer`` per message: leases are created
and extended thousands of times per second.  Entries are never cancelled; the callback
checks whether its entry is still current (lease version), so stale entries just fall out
of the heap when they come due, which bounds the heap by (rate x max deadline of 600 s).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

_log = logging.getLogger(__name__)

TimerCallback = Callable[[int, int], None]


class Scheduler:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TimerCallback, int, int]] = []
        self._tiebreak = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="pubsub-timers", daemon=True)
        self._thread.start()

    def call_at(self, when: float, callback: TimerCallback, key: int, version: int) -> None:
        """Run ``callback(key, version)`` at monotonic time ``when`` (or soon after)."""
        with self._cond:
            entry = (when, next(self._tiebreak), callback, key, version)
            heapq.heappush(self._heap, entry)
            if self._heap[0] is entry:
                self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout=2)

    def _run(self) -> None:
        while True:
            due: list[tuple[float, int, TimerCallback, int, int]] = []
            with self._cond:
                while not self._stopped:
                    now = time.monotonic()
                    if self._heap and self._heap[0][0] <= now:
                        break
                    timeout = self._heap[0][0] - now if self._heap else None
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now and len(due) < 1000:
                    due.append(heapq.heappop(self._heap))
            # Callbacks take subscription locks; never call them while holding ours.
            for _, _, callback, key, version in due:
                try:
                    callback(key, version)
                except Exception:
                    _log.exception("timer callback failed")
