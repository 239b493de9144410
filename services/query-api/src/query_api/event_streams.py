"""The replica's open event streams, fed by its one change feed.

Each stream is a `Subscription`: the user, the last version it sent, the latest version
known for that user, and an event to wake its response. Nothing else is kept per stream:
changes coalesce (a stream that is slow to send, or a user whose marker moves ten times
in a second, sends the latest version once), so a stream's memory does not grow with the
rate of changes or with a slow client. The per-stream cost is measured in
docs/benchmarks.md.

The feed calls `changed(user, version)` on the event loop for every marker change; the
hub wakes that user's streams only, so another user's stream stays silent. When the
feed's listener comes back after breaking, changes made while none ran may have been
missed: every subscribed user's marker is read once and the streams catch up.

The caps are counted here: per replica (`EVENTS_MAX_STREAMS`, derived from the memory a
stream costs, docs/benchmarks.md), per user (`EVENTS_MAX_STREAMS_PER_USER`, a few tabs)
and per client address (`EVENTS_MAX_STREAMS_PER_ADDRESS`), so neither one account nor
one address can take a replica's streams. `open()` refuses past any of them; the route
answers 429 (user, address) or 503 (replica) with Retry-After, and the frontend keeps
polling.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Final

from prometheus_client import Counter, Gauge
from sse_starlette.sse import AppStatus

from flokraft_core.logs import get_logger
from flokraft_core.store.read_costs import reads_labelled
from query_api.reads import AnalysisReads

log = get_logger(__name__)

STREAMS_OPEN = Gauge("flokraft_event_streams_open", "Event streams open on this replica.")
STREAMS_REJECTED = Counter(
    "flokraft_event_streams_rejected_total",
    "Event streams refused at a cap, by cap (replica, user, address).",
    ["cap"],
)
EVENTS_SENT = Counter(
    "flokraft_events_sent_total", "Events sent on event streams, by kind.", ["event"]
)

# How often the hub looks for uvicorn's exit flag (set on SIGTERM by sse-starlette's hook).
_SHUTDOWN_POLL_SECONDS: Final = 0.25
# Marker reads in flight at once when the streams catch up after a listener recovery.
_RECOVERY_CONCURRENCY: Final = 16

MarkerVersion = Callable[[str], Awaitable[int]]


async def marker_version(reads: AnalysisReads, user_id: str) -> int:
    """The user's marker version (one read); 0 for a user without a marker yet (the
    first bump makes 1)."""
    marker = await reads.marker(user_id)
    return 0 if marker is None else marker.version


class Subscription:
    """One open stream. Slots keep it to a few hundred bytes."""

    __slots__ = ("address", "closing", "latest", "sent", "user_id", "wakeup")

    def __init__(self, user_id: str, address: str) -> None:
        self.user_id = user_id
        self.address = address
        self.sent = -1  # nothing sent yet
        self.latest = -1
        self.closing: str | None = None  # why the stream must end ("shutdown")
        self.wakeup = asyncio.Event()

    def offer(self, version: int) -> None:
        # Versions only move forward (a server Increment); an older one (a recovery read
        # that raced the listener) is never sent after a newer one.
        if version > self.latest:
            self.latest = version
            if version != self.sent:
                self.wakeup.set()

    def close(self, reason: str) -> None:
        self.closing = reason
        self.wakeup.set()


class StreamsFull(Exception):
    """A cap is reached: `cap` is "replica", "user" or "address"."""

    def __init__(self, cap: str) -> None:
        super().__init__(cap)
        self.cap = cap


class EventHub:
    def __init__(
        self,
        max_streams: int,
        marker_version: MarkerVersion,
        *,
        max_per_user: int | None = None,
        max_per_address: int | None = None,
        draining: Callable[[], bool] = lambda: False,
    ) -> None:
        self._max_streams = max_streams
        self._max_per_user = max_per_user or max_streams
        self._max_per_address = max_per_address or max_streams
        self._marker_version = marker_version
        self._draining = draining
        self._by_user: defaultdict[str, set[Subscription]] = defaultdict(set)
        self._by_address: defaultdict[str, int] = defaultdict(int)
        self._count = 0
        self._shutting_down = False
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return self._count

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    # --- streams ---------------------------------------------------------------------

    def open(self, user_id: str, address: str = "unknown") -> Subscription:
        """Registers a stream before its marker is read, so a change landing between the
        read and the registration is not lost (it is offered to the subscription)."""
        for cap, count, limit in (
            ("user", len(self._by_user.get(user_id, ())), self._max_per_user),
            ("address", self._by_address.get(address, 0), self._max_per_address),
            ("replica", self._count, self._max_streams),
        ):
            if count >= limit:
                STREAMS_REJECTED.labels(cap).inc()
                raise StreamsFull(cap)
        subscription = Subscription(user_id, address)
        if self._shutting_down:
            subscription.close("shutdown")
        self._by_user[user_id].add(subscription)
        self._by_address[address] += 1
        self._count += 1
        STREAMS_OPEN.set(self._count)
        return subscription

    def close(self, subscription: Subscription) -> None:
        """Idempotent: the response calls it however it ended."""
        streams = self._by_user.get(subscription.user_id)
        if streams is None or subscription not in streams:
            return
        streams.discard(subscription)
        if not streams:
            del self._by_user[subscription.user_id]
        self._by_address[subscription.address] -= 1
        if self._by_address[subscription.address] <= 0:
            del self._by_address[subscription.address]
        self._count -= 1
        STREAMS_OPEN.set(self._count)

    # --- what the feed tells us ------------------------------------------------------

    def changed(self, user_id: str, version: int) -> None:
        for subscription in self._by_user.get(user_id, ()):
            subscription.offer(version)

    def recovered(self) -> None:
        if self._by_user:
            self._spawn(self._catch_up(), "event-hub-catch-up")

    async def _catch_up(self) -> None:
        users = list(self._by_user)
        log.info("event_streams_catch_up", users=len(users))
        limit = asyncio.Semaphore(_RECOVERY_CONCURRENCY)

        async def one(user_id: str) -> None:
            async with limit:
                try:
                    with reads_labelled("/analyses/events"):
                        version = await self._marker_version(user_id)
                except Exception as exc:  # the next recovery or the client's retry heals it
                    log.warning("event_streams_catch_up_failed", error=type(exc).__name__)
                    return
                self.changed(user_id, version)

        await asyncio.gather(*(one(user_id) for user_id in users))

    # --- shutdown --------------------------------------------------------------------

    def start(self) -> None:
        self._spawn(self._watch_for_shutdown(), "event-hub-shutdown")

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch_for_shutdown(self) -> None:
        # uvicorn waits for in-flight responses before the lifespan ends, so streams must
        # learn of SIGTERM themselves: the drain begins at the signal (web.drain), and
        # sse-starlette hooks uvicorn's own exit (AppStatus.should_exit) when there is no
        # drain; the hub tells every stream to say goodbye at the first of the two, so
        # streams move to another replica while this one still answers polls.
        # Plain flags set from a signal handler, so they are polled (once per replica).
        while not (AppStatus.should_exit or self._draining()):  # noqa: ASYNC110
            await asyncio.sleep(_SHUTDOWN_POLL_SECONDS)
        self.shut_down()

    def shut_down(self) -> None:
        self._shutting_down = True
        streams = [s for subscriptions in self._by_user.values() for s in subscriptions]
        log.info("event_streams_closing", streams=len(streams))
        for subscription in streams:
            subscription.close("shutdown")

    def _spawn(self, coroutine: Awaitable[None], name: str) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
