"""What /readyz answers, and where the shared dependencies' health goes instead.

Readiness says whether *this* pod can serve: it has started, its settings and signing keys
are loaded, it is not draining, and its event loop is responsive. It reads nothing over
the network. Firestore and Pub/Sub are shared by every replica: if a probe checked them,
a blip would fail every replica's probe at once, the load balancer would drop them all
and answer 502 to everything, including what the app answers itself (a 304, a quick 503
with Retry-After, an open event stream). So their health goes elsewhere:

- the answers: a request that needs an unavailable dependency gets 503 + Retry-After
  within the call's own deadline (`flokraft_core.web.errors`);
- metrics and logs: `DependencyMonitor` checks each dependency once per
  `DEPENDENCY_CHECK_INTERVAL_SECONDS` (one cheap call, whatever the probe rate) and keeps
  `flokraft_dependency_up{dependency}`; it logs each change (`dependency_down`,
  `dependency_up`); /readyz shows the last result for a person, without acting on it;
- alerts: on `flokraft_dependency_up` (docs/observability.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final

from google.cloud import firestore
from prometheus_client import Counter, Gauge

from flokraft_core.logs import get_logger
from flokraft_core.settings import CoreSettings
from flokraft_core.store.read_costs import count_reads, reads_labelled

log = get_logger(__name__)

# A point read of a document that need not exist: the cheapest call that proves the
# database answers (and that our credentials work). Billed as one read.
PROBE_DOCUMENT = "_readyz"
# The read-cost label of the monitor's checks (never a request route).
CHECK_ROUTE: Final = "dependency_check"

DEPENDENCY_UP = Gauge(
    "flokraft_dependency_up",
    "1 when the last check of a shared dependency from this replica succeeded, else 0.",
    ["dependency"],
)
DEPENDENCY_CHECK_FAILURES = Counter(
    "flokraft_dependency_check_failures_total",
    "Failed checks of a shared dependency from this replica.",
    ["dependency"],
)
EVENT_LOOP_LAG = Gauge(
    "flokraft_event_loop_lag_seconds",
    "How late the event loop ran a timer, at the last tick (a blocked loop is late).",
)


async def check_firestore_async(db: firestore.AsyncClient, settings: CoreSettings) -> None:
    count_reads(1)
    await (
        db.collection(settings.firestore_collection)
        .document(PROBE_DOCUMENT)
        .get(timeout=settings.readiness_timeout_seconds, retry=None)
    )


def check_firestore_sync(db: firestore.Client, settings: CoreSettings) -> None:
    count_reads(1)
    db.collection(settings.firestore_collection).document(PROBE_DOCUMENT).get(
        timeout=settings.readiness_timeout_seconds, retry=None
    )


DependencyCheck = Callable[[], Awaitable[None]]


@dataclass
class DependencyState:
    up: bool | None = None  # None: not checked yet
    since: float = 0.0  # monotonic time of the last change
    checked_at: float = 0.0
    error: str | None = None

    def describe(self, now: float) -> str:
        if self.up is None:
            return "not checked yet"
        if self.up:
            return "ok"
        return f"down for {now - self.since:.0f} s: {self.error}"


class DependencyMonitor:
    """Checks each shared dependency once per interval, in the background.

    One call per dependency per interval per replica, whatever the probe rate; the result
    feeds metrics and logs, never readiness."""

    def __init__(
        self, checks: Mapping[str, DependencyCheck], *, interval: float, timeout: float
    ) -> None:
        self._interval = interval
        self._timeout = timeout
        self._task: asyncio.Task[None] | None = None
        self.set_checks(checks)

    def set_checks(self, checks: Mapping[str, DependencyCheck]) -> None:
        self._checks = dict(checks)
        self.states = {name: DependencyState() for name in self._checks}

    def start(self) -> None:
        if self._checks:
            self._task = asyncio.create_task(self._run(), name="dependency-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        with reads_labelled(CHECK_ROUTE):
            while True:
                await self.check_all()
                await asyncio.sleep(self._interval)

    async def check_all(self) -> None:
        await asyncio.gather(*(self._check(name, check) for name, check in self._checks.items()))

    async def _check(self, name: str, check: DependencyCheck) -> None:
        error: str | None = None
        try:
            await asyncio.wait_for(check(), timeout=self._timeout)
        except TimeoutError:
            error = f"timed out after {self._timeout} s"
        except Exception as exc:  # any failure of the dependency counts as down
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
        self._record(name, error)

    def _record(self, name: str, error: str | None) -> None:
        now = time.monotonic()
        state = self.states[name]
        up = error is None
        DEPENDENCY_UP.labels(name).set(1 if up else 0)
        if not up:
            DEPENDENCY_CHECK_FAILURES.labels(name).inc()
        if state.up is not up:
            if not up:
                log.warning("dependency_down", dependency=name, error=error)
            elif state.up is False:
                log.info("dependency_up", dependency=name, down_seconds=round(now - state.since, 1))
            state.since = now
        state.up, state.error, state.checked_at = up, error, now

    def report(self) -> dict[str, str]:
        now = time.monotonic()
        return {name: state.describe(now) for name, state in self.states.items()}


class LoopMonitor:
    """Notices an event loop that is blocked or starved: a task sleeps `tick` seconds
    and records how late it wakes up.

    A loop blocked right now cannot answer the probe at all (the probe times out); one
    that was blocked for more than `max_lag` within the last `window` seconds is reported
    as not ready until the window has passed, so a pod that keeps wedging stays out of
    rotation instead of flapping back in between stalls."""

    def __init__(self, *, max_lag: float, window: float = 10.0, tick: float = 0.25) -> None:
        self._max_lag = max_lag
        self._window = window
        self._tick = tick
        self._late: deque[tuple[float, float]] = deque()  # (when, lag) above max_lag
        self._last_tick: float | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._last_tick = time.monotonic()
        self._task = asyncio.create_task(self._run(), name="event-loop-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(self._tick)
            now = time.monotonic()
            lag = max(0.0, now - before - self._tick)
            EVENT_LOOP_LAG.set(lag)
            if lag > self._max_lag:
                self._late.append((now, lag))
                log.warning("event_loop_blocked", seconds=round(lag, 2))
            self._last_tick = now

    def problem(self) -> str | None:
        now = time.monotonic()
        if self._last_tick is None:
            return "the event loop monitor has not started"
        while self._late and now - self._late[0][0] > self._window:
            self._late.popleft()
        silent = now - self._last_tick
        if silent > self._max_lag + self._tick:
            # The monitor's own task is starved or gone while this probe runs.
            return f"the event loop has not run its monitor for {silent:.1f} s"
        if self._late:
            worst = max(lag for _, lag in self._late)
            return (
                f"the event loop was blocked for {worst:.1f} s within the last {self._window:.0f} s"
            )
        return None
