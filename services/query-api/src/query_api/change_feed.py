"""One Firestore listener per replica on the change-marker collection, and a bounded map
(LRU over `max_users`) of the latest marker version seen per user.

What it is for:
- with `LIST_ETAG_FROM_FEED`, an unchanged poll is answered from the map, reading
  nothing (the marker read is the fallback whenever the map cannot vouch for a user);
- observers (the event stream) are told of every change the moment it arrives, and
  recovery observers are told when a listener that replaced a broken one is up again
  (changes made while none ran may have been missed, so the streams re-read their markers).

When the map vouches for a user (`trusted_version`): the listener is up and has delivered
its first consistent snapshot since it (re)started, and the user's entry was confirmed
(by the listener or by a marker read) within `verify_seconds`. Anything else (listener
starting, restarting after its stream ended, entry evicted or too old) returns None and
the caller reads the marker, which costs one document and refreshes the entry.

What it cannot promise: a listener learns of a write only after Firestore delivers it
(typically well under a second). A poll in that window is answered from the previous
version, so the change shows one poll later; and a stream that stalls without ending is
only noticed through `verify_seconds`. That is why answering from the map is a setting,
and the marker read (read-your-writes) is the default.

Memory and CPU: the map holds at most `max_users` entries (~150 B each, measured in
docs/benchmarks.md). The listener itself keeps a snapshot of every marker its query
matched, so it listens only to markers changed since shortly before it started, and it
is replaced by a fresh one once it has seen `listener_max_markers` markers. That bound is
small on purpose: the Python client's listener sorts its whole snapshot (with a Python
comparator) on every change it delivers, so its CPU per change grows with the snapshot:
at 10 changes a second it rose from nothing to half a core within a minute as the
snapshot grew to ~450 markers (docs/benchmarks.md, "Event streams").
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from cachetools import LRUCache
from google.cloud import firestore
from google.cloud.firestore_v1.base_document import DocumentSnapshot
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.watch import Watch

from flokraft_core.logs import get_logger
from flokraft_core.store.change_markers import CHANGED_AT_FIELD, Marker, marker_from_snapshot
from flokraft_core.store.read_costs import count_reads, reads_labelled

log = get_logger(__name__)

Observer = Callable[[str, int], None]
RecoveryObserver = Callable[[], None]
# Markers changed this long before a listener starts are part of its first snapshot, so
# a write racing with the start is not missed (client and server clocks differ a little).
_START_MARGIN: Final = timedelta(seconds=30)
# A listener replaced because its snapshot is full: the old one ran until the new one was
# registered, so the new one needs only to cover the old one's delivery lag.
_ROTATE_MARGIN: Final = timedelta(seconds=10)
_SUPERVISE_SECONDS: Final = 1.0


def _by_document_path(a: DocumentSnapshot[Any], b: DocumentSnapshot[Any]) -> int:
    left: str = a.reference._document_path
    right: str = b.reference._document_path
    return (left > right) - (left < right)


@dataclass
class _Entry:
    version: int
    confirmed_at: float  # monotonic


class ChangeFeed:
    def __init__(
        self,
        db: firestore.Client,
        collection: str,
        *,
        max_users: int,
        verify_seconds: float,
        listener_max_markers: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._collection = db.collection(collection)
        self._listener_max_markers = listener_max_markers
        self._verify_seconds = verify_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._versions: LRUCache[str, _Entry] = LRUCache(maxsize=max_users)
        self._watch: Watch | None = None
        self._watch_generation = 0
        self._ready_generation = -1  # generation whose first snapshot has arrived
        self._seen_by_watch = 0
        self._observers: list[Observer] = []
        self._recovery_observers: list[RecoveryObserver] = []
        self._forgot_generation = -1  # the latest generation started after a broken one
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.restarts = 0

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._restart, "start", True)
        self._task = asyncio.create_task(self._supervise(), name="change-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.to_thread(self._close_watch)

    @property
    def healthy(self) -> bool:
        watch = self._watch
        return (
            watch is not None
            and watch.is_active
            and self._ready_generation == self._watch_generation
        )

    def add_observer(self, observer: Observer) -> None:
        """`observer(user_id, version)` runs on the event loop for every marker change."""
        self._observers.append(observer)

    def add_recovery_observer(self, observer: RecoveryObserver) -> None:
        """`observer()` runs on the event loop when a listener started after a broken one
        (or at start) has delivered its first snapshot: anything a caller learned only
        from the listener may have missed changes made while none ran."""
        self._recovery_observers.append(observer)

    async def _supervise(self) -> None:
        while True:
            await asyncio.sleep(_SUPERVISE_SECONDS)
            watch = self._watch
            if watch is None or not watch.is_active:
                await asyncio.to_thread(self._restart, "listener stream ended", True)
            elif self._seen_by_watch >= self._listener_max_markers:
                # Its own snapshot grows with every marker it has seen: start afresh. The
                # old one runs until the new one is up, so the map stays valid.
                await asyncio.to_thread(self._restart, "listener snapshot full", False)

    def _restart(self, reason: str, forget: bool) -> None:
        old = self._watch
        with self._lock:
            self._watch_generation += 1
            generation = self._watch_generation
            self._seen_by_watch = 0
            if forget:
                self._forgot_generation = generation
                # Changes may have been missed while no listener ran: nothing in the map
                # can be vouched for until a read or the new listener confirms it.
                self._versions.clear()
        since = datetime.now(UTC) - (_START_MARGIN if forget else _ROTATE_MARGIN)
        query = self._collection.where(filter=FieldFilter(CHANGED_AT_FIELD, ">=", since))
        try:
            watch = query.on_snapshot(
                lambda docs, changes, read_time: self._on_snapshot(generation, changes)
            )
            # The client sorts the whole snapshot on every change with the query's
            # comparator (Python, field by field: ~0.1 ms per marker per change). The feed
            # reads only the changes, never that order, so any total order will do.
            watch._comparator = _by_document_path
            self._watch = watch
        except Exception as exc:  # the supervisor tries again in a second
            self._watch = None
            log.warning("change_feed_start_failed", error=type(exc).__name__, detail=str(exc))
        if old is not None:
            # The new listener is already running, so no change falls between the two.
            self._close(old)
        self.restarts += 1
        log.info("change_feed_started", reason=reason, generation=generation)

    def _close_watch(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            self._close(watch)

    @staticmethod
    def _close(watch: Watch) -> None:
        try:
            watch.unsubscribe()  # type: ignore[no-untyped-call]
        except Exception as exc:  # closing a broken stream may raise its error again
            log.debug("change_feed_close", error=type(exc).__name__)

    # --- the listener's thread ---------------------------------------------------------

    def _on_snapshot(self, generation: int, changes: list[Any]) -> None:
        if generation != self._watch_generation:
            return  # a listener being replaced
        changed: list[tuple[str, int]] = []
        with reads_labelled("listener"):
            # Firestore bills every document a listener delivers.
            count_reads(len(changes))
            for change in changes:
                marker = marker_from_snapshot(change.document)
                if marker is None:
                    continue
                changed.append((marker.user_id, self._merge(marker)))
        with self._lock:
            self._seen_by_watch += sum(1 for c in changes if c.type.name == "ADDED")
            recovered = (
                self._ready_generation != generation and generation == self._forgot_generation
            )
            self._ready_generation = generation
        self._notify(changed)
        if recovered:
            self._notify_recovered()

    def _notify(self, changed: list[tuple[str, int]]) -> None:
        loop = self._loop
        if not changed or not self._observers or loop is None or loop.is_closed():
            return
        for user_id, version in changed:
            for observer in self._observers:
                loop.call_soon_threadsafe(observer, user_id, version)

    def _notify_recovered(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        for observer in self._recovery_observers:
            loop.call_soon_threadsafe(observer)

    # --- the map ---------------------------------------------------------------------

    def _merge(self, marker: Marker) -> int:
        """Versions only move forward: a listener event and a marker read may arrive in
        either order, and the older one must never win."""
        with self._lock:
            entry = self._versions.get(marker.user_id)
            version = marker.version if entry is None else max(entry.version, marker.version)
            self._versions[marker.user_id] = _Entry(version, self._clock())
            return version

    def remember(self, marker: Marker) -> None:
        """After a marker read: the entry is confirmed as of now."""
        self._merge(marker)

    def trusted_version(self, user_id: str) -> int | None:
        if not self.healthy:
            return None
        with self._lock:
            entry: _Entry | None = self._versions.get(user_id)
        if entry is None or self._clock() - entry.confirmed_at > self._verify_seconds:
            return None
        return entry.version

    def __len__(self) -> int:
        return len(self._versions)
