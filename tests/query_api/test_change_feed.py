"""The change marker's read order and the per-replica listener, in-process on the emulator:
the race between a write and a poll, and the listener's failure modes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from google.cloud import firestore as gfirestore
from starlette.requests import Request

from flokraft_core.store.change_markers import Marker, bump_marker
from flokraft_devstack.processes import ManagedProcess
from query_api.change_feed import ChangeFeed
from query_api.list_versions import ListVersions
from query_api.listing import user_page_response
from query_api.reads import AnalysisReads, ListFilters
from query_api.settings import QueryApiSettings
from tests.query_api.conftest import COLLECTION, analysis_doc

FEEDS = "analysis_feeds"


# No page token is read or made here (every page fits); the key is only passed along.
KEY = b"change-feed-test-key"


def change(db: gfirestore.Client, owner: str, doc_id: str, fields: dict[str, Any]) -> None:
    batch = db.batch()
    batch.set(db.collection(COLLECTION).document(doc_id), fields, merge=True)
    bump_marker(batch, db.collection(FEEDS), owner)
    batch.commit()


def request(if_none_match: str | None = None) -> Request:
    headers = [(b"if-none-match", if_none_match.encode())] if if_none_match else []
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/analyses",
            "query_string": b"",
            "headers": headers,
            "scheme": "http",
            "server": ("testserver", 80),
        }
    )


async def eventually(check: Callable[[], Awaitable[bool] | bool], within: float) -> bool:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        result = check()
        if isinstance(result, Awaitable):
            result = await result
        if result or asyncio.get_running_loop().time() > deadline:
            return bool(result)
        await asyncio.sleep(0.05)


def test_a_write_between_the_marker_read_and_the_page_read_shows_on_the_next_poll(
    firestore: ManagedProcess, project_id: str
) -> None:
    sync_db = gfirestore.Client(project=project_id)
    uid, doc_id = "racer", "racer-1"
    change(sync_db, uid, doc_id, analysis_doc(uid, 1))
    settings = QueryApiSettings(google_cloud_project=project_id)
    filters = ListFilters(user_id=uid, analysis_type="couple", status=None)

    class WriteLandsAfterTheMarkerRead(ListVersions):
        async def current(self, user_id: str) -> int | None:
            version = await super().current(user_id)
            change(sync_db, uid, doc_id, {"status": "failed"})
            return version

    async def scenario() -> None:
        db = gfirestore.AsyncClient(project=project_id)
        reads = AnalysisReads(
            db, COLLECTION, markers_collection=FEEDS, timeout_seconds=5, retry_seconds=0
        )
        racing = WriteLandsAfterTheMarkerRead(reads, None, trust_feed=False)
        first = await user_page_response(
            request(), reads, racing, settings, KEY, filters, limit=50, page_token=None
        )
        # The page already holds the write, but is tagged with the version before it...
        assert b'"status":"failed"' in first.body
        etag = first.headers["etag"]
        assert etag.startswith('W/"m1.')
        # ...so the following poll is a 200, never a 304 that would freeze a stale page.
        plain = ListVersions(reads, None, trust_feed=False)
        following = await user_page_response(
            request(etag), reads, plain, settings, KEY, filters, limit=50, page_token=None
        )
        assert following.status_code == 200
        assert following.headers["etag"].startswith('W/"m2.')
        again = await user_page_response(
            request(following.headers["etag"]),
            reads,
            plain,
            settings,
            KEY,
            filters,
            limit=50,
            page_token=None,
        )
        assert again.status_code == 304
        db.close()

    asyncio.run(scenario())
    sync_db.close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def feed_db(firestore: ManagedProcess, project_id: str) -> gfirestore.Client:
    return gfirestore.Client(project=project_id)


def test_the_listener_delivers_changes_and_observers_hear_them(feed_db: gfirestore.Client) -> None:
    heard: list[tuple[str, int]] = []

    async def scenario() -> None:
        feed = ChangeFeed(feed_db, FEEDS, max_users=100, verify_seconds=30)
        feed.add_observer(lambda user, version: heard.append((user, version)))
        await feed.start()
        assert await eventually(lambda: feed.healthy, 10)
        assert feed.trusted_version("alice") is None  # never seen: the caller reads
        change(feed_db, "alice", "a1", analysis_doc("alice", 1))
        assert await eventually(lambda: feed.trusted_version("alice") == 1, 5)
        change(feed_db, "alice", "a1", {"status": "failed"})
        assert await eventually(lambda: feed.trusted_version("alice") == 2, 5)
        await feed.stop()

    asyncio.run(scenario())
    assert ("alice", 1) in heard
    assert ("alice", 2) in heard


def test_an_entry_is_trusted_only_within_verify_seconds(feed_db: gfirestore.Client) -> None:
    clock = FakeClock()

    async def scenario() -> None:
        feed = ChangeFeed(feed_db, FEEDS, max_users=100, verify_seconds=30, clock=clock)
        await feed.start()
        assert await eventually(lambda: feed.healthy, 10)
        feed.remember(Marker("bob", 4, None))
        assert feed.trusted_version("bob") == 4
        clock.now += 31  # a listener that stalled unnoticed cannot vouch for longer
        assert feed.trusted_version("bob") is None
        feed.remember(Marker("bob", 3, None))  # an older read never moves a version back
        assert feed.trusted_version("bob") == 4
        await feed.stop()

    asyncio.run(scenario())


def test_a_listener_whose_stream_ends_is_replaced_and_vouches_for_nothing_meanwhile(
    feed_db: gfirestore.Client,
) -> None:
    async def scenario() -> None:
        feed = ChangeFeed(feed_db, FEEDS, max_users=100, verify_seconds=30)
        await feed.start()
        assert await eventually(lambda: feed.healthy, 10)
        change(feed_db, "carol", "c1", analysis_doc("carol", 1))
        assert await eventually(lambda: feed.trusted_version("carol") == 1, 5)

        broken = feed._watch
        assert broken is not None
        broken.close()  # what the client does when the stream fails for good
        assert not feed.healthy
        assert feed.trusted_version("carol") is None  # the caller reads the marker

        assert await eventually(lambda: feed.healthy and feed._watch is not broken, 10)
        assert feed.restarts >= 2
        change(feed_db, "carol", "c1", {"status": "failed"})
        assert await eventually(lambda: feed.trusted_version("carol") == 2, 5)
        await feed.stop()

    asyncio.run(scenario())


def test_the_map_is_bounded(feed_db: gfirestore.Client) -> None:
    async def scenario() -> None:
        feed = ChangeFeed(feed_db, FEEDS, max_users=100, verify_seconds=30)
        await feed.start()
        for i in range(250):
            feed.remember(Marker(f"user{i}", 1, None))
        assert len(feed) == 100
        assert await eventually(lambda: feed.healthy, 10)
        assert feed.trusted_version("user249") == 1
        assert feed.trusted_version("user0") is None  # evicted: read again when it polls
        await feed.stop()

    asyncio.run(scenario())


def test_the_listener_recovers_after_firestore_comes_back(
    private_firestore: ManagedProcess,
) -> None:
    db = gfirestore.Client(project=f"feed-{uuid.uuid4().hex[:8]}")

    async def scenario() -> None:
        feed = ChangeFeed(db, FEEDS, max_users=100, verify_seconds=30)
        await feed.start()
        assert await eventually(lambda: feed.healthy, 10)
        private_firestore.stop()
        await asyncio.sleep(1)
        private_firestore.start(timeout=30)
        change(db, "dave", "d1", analysis_doc("dave", 1))
        assert await eventually(lambda: feed.trusted_version("dave") == 1, 30)
        await feed.stop()

    asyncio.run(scenario())
    db.close()


def test_recovery_observers_hear_when_a_broken_listener_is_replaced(
    feed_db: gfirestore.Client,
) -> None:
    recoveries: list[float] = []

    async def scenario() -> None:
        feed = ChangeFeed(feed_db, FEEDS, max_users=100, verify_seconds=30)
        feed.add_recovery_observer(lambda: recoveries.append(asyncio.get_running_loop().time()))
        await feed.start()
        assert await eventually(lambda: len(recoveries) == 1, 10)  # the first listener
        broken = feed._watch
        assert broken is not None
        broken.close()
        assert await eventually(lambda: len(recoveries) == 2, 10)
        assert feed.healthy
        await feed.stop()

    asyncio.run(scenario())


def test_a_full_listener_is_replaced_without_forgetting_and_keeps_delivering(
    feed_db: gfirestore.Client,
) -> None:
    heard: list[tuple[str, int]] = []
    recoveries: list[int] = []

    async def scenario() -> None:
        feed = ChangeFeed(
            feed_db, FEEDS, max_users=1000, verify_seconds=30, listener_max_markers=20
        )
        feed.add_observer(lambda user, version: heard.append((user, version)))
        feed.add_recovery_observer(lambda: recoveries.append(1))
        await feed.start()
        assert await eventually(lambda: feed.healthy, 10)
        first = feed._watch
        for i in range(25):
            change(feed_db, f"rot{i}", f"rot{i}-a", analysis_doc(f"rot{i}", 1))
        assert await eventually(lambda: feed._watch is not first and feed.healthy, 15)
        # Not a failure: the map is kept and no catch-up reads are asked for.
        assert feed.trusted_version("rot0") == 1
        assert len(recoveries) == 1  # the start only
        change(feed_db, "rot0", "rot0-a", {"status": "failed"})
        assert await eventually(lambda: ("rot0", 2) in heard, 10)
        await feed.stop()

    asyncio.run(scenario())
