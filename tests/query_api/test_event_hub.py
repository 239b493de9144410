"""The event hub in-process, on the emulator: coalescing, per-user delivery, the cap, and
the catch-up read after the listener recovers."""

from __future__ import annotations

import asyncio

import pytest
from google.cloud import firestore as gfirestore

from flokraft_core.store.change_markers import bump_marker
from flokraft_devstack.processes import ManagedProcess
from query_api.event_streams import EventHub, StreamsFull, marker_version
from query_api.reads import AnalysisReads

FEEDS = "analysis_feeds"


def bump(db: gfirestore.Client, owner: str, times: int = 1) -> None:
    for _ in range(times):
        batch = db.batch()
        bump_marker(batch, db.collection(FEEDS), owner)
        batch.commit()


def test_changes_coalesce_and_reach_only_their_users_streams() -> None:
    async def scenario() -> None:
        async def unused(user_id: str) -> int:
            raise AssertionError("no reads expected")

        hub = EventHub(10, unused)
        alice, bob = hub.open("alice"), hub.open("bob")
        alice.sent = bob.sent = 0
        for version in (1, 2, 3):
            hub.changed("alice", version)
        hub.changed("alice", 2)  # an older version arriving late is ignored
        assert (alice.latest, alice.wakeup.is_set()) == (3, True)
        assert (bob.latest, bob.wakeup.is_set()) == (-1, False)
        hub.close(alice)
        hub.close(alice)  # idempotent
        assert len(hub) == 1

    asyncio.run(scenario())


def test_the_cap_refuses_and_a_closed_stream_frees_its_place() -> None:
    async def scenario() -> None:
        async def unused(user_id: str) -> int:
            return 0

        hub = EventHub(2, unused)
        first = hub.open("u")
        hub.open("u")
        with pytest.raises(StreamsFull):
            hub.open("v")
        hub.close(first)
        hub.open("v")
        assert len(hub) == 2

    asyncio.run(scenario())


def test_after_a_listener_recovery_every_subscribed_user_is_read_once(
    firestore: ManagedProcess, project_id: str
) -> None:
    sync_db = gfirestore.Client(project=project_id)
    bump(sync_db, "carol", times=3)  # changes the broken listener never delivered

    async def scenario() -> None:
        db = gfirestore.AsyncClient(project=project_id)
        reads = AnalysisReads(
            db, "analyses", markers_collection=FEEDS, timeout_seconds=5, retry_seconds=0
        )
        hub = EventHub(10, lambda user_id: marker_version(reads, user_id))
        carol, dan = hub.open("carol"), hub.open("dan")
        carol.sent = carol.latest = 1
        dan.sent = dan.latest = 0
        hub.recovered()
        for _ in range(100):
            if carol.wakeup.is_set():
                break
            await asyncio.sleep(0.05)
        assert (carol.latest, carol.wakeup.is_set()) == (3, True)
        assert (dan.latest, dan.wakeup.is_set()) == (0, False)  # no marker: nothing moved
        await hub.stop()
        db.close()

    asyncio.run(scenario())
    sync_db.close()


def test_caps_per_user_and_per_address_leave_the_replica_to_others() -> None:
    async def scenario() -> None:
        async def unused(user_id: str) -> int:
            return 0

        hub = EventHub(100, unused, max_per_user=3, max_per_address=4)
        tabs = [hub.open("alice", "198.51.100.1") for _ in range(3)]
        with pytest.raises(StreamsFull) as refused:
            hub.open("alice", "198.51.100.2")  # a fourth tab, from anywhere
        assert refused.value.cap == "user"
        hub.open("bob", "198.51.100.1")
        with pytest.raises(StreamsFull) as refused:
            hub.open("carol", "198.51.100.1")  # a fifth stream from one address
        assert refused.value.cap == "address"
        hub.open("carol", "198.51.100.3")
        hub.close(tabs[0])
        hub.close(tabs[0])  # idempotent: counts once
        hub.open("dave", "198.51.100.1")
        with pytest.raises(StreamsFull):
            hub.open("erin", "198.51.100.1")
        assert len(hub) == 5

    asyncio.run(scenario())
