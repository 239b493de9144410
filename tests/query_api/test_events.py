"""`GET /analyses/events` end to end: the real query-api process on the Firestore
emulator, real streams over HTTP, changes written the way the write path writes them (the
document change and `bump_marker` in one batch or transaction)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google.cloud import firestore as gfirestore

from flokraft_core.store.change_markers import bump_marker
from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.processes import ManagedProcess, wait_until
from tests.query_api.conftest import (
    COLLECTION,
    QueryApi,
    analysis_doc,
    assert_served,
    ends_with_reconnect,
    running_query_api,
)
from tests.support.sse import Event, EventStream

FEEDS = "analysis_feeds"
EVENTS = "/analyses/events"
# The bound from a write to its event; the tests measure it from the commit.
WITHIN = 1.0


def open_stream(api: QueryApi, uid: str, **headers: str) -> EventStream:
    return EventStream(api.url + EVENTS, {**api.issuer.headers(uid), **headers}).open()


def write_change(db: gfirestore.Client, owner: str, doc_id: str, fields: dict[str, Any]) -> float:
    """One batch: the analysis change and the owner's marker bump. Returns when it
    committed (monotonic)."""
    batch = db.batch()
    batch.set(db.collection(COLLECTION).document(doc_id), fields, merge=True)
    bump_marker(batch, db.collection(FEEDS), owner)
    batch.commit()
    return time.monotonic()


def next_of(stream: EventStream, kind: str, timeout: float) -> Event:
    deadline = time.monotonic() + timeout
    while True:
        event = stream.next(max(0.01, deadline - time.monotonic()))
        if event.event == kind:
            return event


# --- delivery -------------------------------------------------------------------------


def test_the_owner_hears_a_create_a_rerun_and_a_completion_within_a_second(
    api: QueryApi, uid: str
) -> None:
    other = f"{uid}-other"
    mine = open_stream(api, uid)
    theirs = open_stream(api, other)
    try:
        ready = mine.next()
        assert (ready.event, ready.id, ready.json) == ("ready", "0", {"version": 0})
        assert ready.retry == 3000
        assert mine.response_headers["content-type"].startswith("text/event-stream")
        assert mine.response_headers["cache-control"] == "no-store"
        assert theirs.next().event == "ready"

        doc_id = f"{uid}-a"
        steps = [
            # rerun-api's create: a new queued analysis.
            analysis_doc(uid, 1, status="queued", processed=False, total_score=None),
            # rerun-api's rerun: queued again under a new generation.
            {"status": "queued", "generation": 2, "processed": False},
            # the analyzer's completion: done with its score.
            {"status": "done", "processed": True, "total_score": 91.5, "generation": 2},
        ]
        for version, fields in enumerate(steps, start=1):
            committed = write_change(api.db, uid, doc_id, fields)
            event = next_of(mine, "changed", timeout=10)
            latency = event.received_at - committed
            assert (event.id, event.json) == (str(version), {"version": version})
            assert latency < WITHIN, f"step {version}: {latency:.3f} s"

        # The other user's stream heard nothing but its own `ready`.
        time.sleep(0.5)
        assert theirs.drain() == []
    finally:
        mine.close()
        theirs.close()


def test_last_event_id_resumes_with_an_event_at_once_when_the_version_moved(
    api: QueryApi, uid: str
) -> None:
    write_change(api.db, uid, f"{uid}-a", analysis_doc(uid, 1))
    first = open_stream(api, uid)
    seen = first.next()
    first.close()
    assert (seen.event, seen.id) == ("ready", "1")

    # Away for a while; the list changes twice meanwhile.
    write_change(api.db, uid, f"{uid}-a", {"status": "failed"})
    write_change(api.db, uid, f"{uid}-b", analysis_doc(uid, 2))

    resumed = open_stream(api, uid, **{"Last-Event-ID": "1"})
    try:
        event = resumed.next(timeout=5)
        assert (event.event, event.id, event.json) == ("changed", "3", {"version": 3})
    finally:
        resumed.close()

    current = open_stream(api, uid, **{"Last-Event-ID": "3"})
    try:
        event = current.next(timeout=5)
        assert (event.event, event.id) == ("ready", "3")  # nothing missed
    finally:
        current.close()


def test_a_bad_last_event_id_or_no_token_is_refused_with_a_json_error(
    api: QueryApi, uid: str
) -> None:
    bad = api.get(EVENTS, uid, headers={"Last-Event-ID": "seven"})
    assert bad.status_code == 422
    assert bad.json()["error"]["param"] == "Last-Event-ID"
    anonymous = api.get(EVENTS)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthenticated"


# --- cap, lifetime, heartbeat, logs, metrics ------------------------------------------


@pytest.fixture(scope="module")
def small_api(firestore: ManagedProcess, issuer: TestIssuer) -> Iterator[QueryApi]:
    """A replica with room for two streams that live two seconds and beat every 0.5 s."""
    with running_query_api(
        firestore.host,
        issuer,
        EVENTS_MAX_STREAMS="2",
        EVENTS_MAX_LIFETIME_SECONDS="2",
        EVENTS_HEARTBEAT_SECONDS="0.5",
        EVENTS_FULL_RETRY_AFTER_SECONDS="17",
    ) as it:
        yield it


def test_past_the_cap_the_stream_is_refused_with_503_and_retry_after(
    small_api: QueryApi, uid: str
) -> None:
    streams = [open_stream(small_api, f"{uid}-{i}") for i in range(2)]
    try:
        for stream in streams:
            assert stream.next().event == "ready"
        refused = small_api.get(EVENTS, f"{uid}-late")
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "17"
        assert refused.json()["error"]["code"] == "too_many_streams"
        # A stream that hangs up frees its place.
        streams[0].close()
        assert_served(lambda: open_stream(small_api, f"{uid}-late"), within=10)
    finally:
        for stream in streams:
            stream.close()


def test_a_stream_beats_and_ends_at_its_lifetime_with_a_reconnect_event(
    small_api: QueryApi, uid: str
) -> None:
    started = time.monotonic()
    stream = open_stream(small_api, uid)
    try:
        assert stream.next().event == "ready"
        lived = ends_with_reconnect(stream, "lifetime") - started
        assert 1.5 < lived < 5, lived  # 2 s less up to 10 % jitter, plus the connect
        assert len([c for c in stream.comments if c.startswith("ping")]) >= 2
    finally:
        stream.close()

    # The access log has one line for the stream, with its duration, and no token.
    # (Written once the server has finished the response, which the client may see end
    # a moment before: waited for on a loaded machine.)
    def stream_lines() -> list[dict[str, Any]]:
        return [
            line
            for line in small_api.log_lines()
            if line.get("event") == "request"
            and line.get("path") == EVENTS
            and line.get("user") == uid
        ]

    assert wait_until(stream_lines, 5)
    token = small_api.issuer.token(uid)
    log_text = small_api.process.log_path.read_text(errors="replace")
    assert token.split(".")[2] not in log_text
    lines = stream_lines()
    assert len(lines) == 1
    assert lines[0]["status"] == 200
    assert lines[0]["duration_ms"] > 1500

    # Streams have their own metrics; the latency histogram does not count them.
    metrics = httpx.get(small_api.url + "/metrics", timeout=10).text
    assert "flokraft_event_streams_open" in metrics
    assert 'flokraft_events_sent_total{event="reconnect"}' in metrics
    assert f'handler="{EVENTS}"' not in metrics


# --- the listener breaks and comes back -----------------------------------------------


def test_streams_resume_after_firestore_stops_and_after_it_freezes(
    private_firestore: ManagedProcess, issuer: TestIssuer, uid: str
) -> None:
    with running_query_api(private_firestore.host, issuer) as api:
        stream = open_stream(api, uid)
        try:
            assert stream.next().event == "ready"

            # Stopped: the listener's stream ends; the supervisor replaces it once the
            # emulator is back (which starts empty: the next create is version 1).
            private_firestore.stop()
            time.sleep(2)
            private_firestore.start(timeout=30)
            time.sleep(3)  # the replacement listener connects
            write_change(api.db, uid, f"{uid}-a", analysis_doc(uid, 1))
            event = next_of(stream, "changed", timeout=30)
            assert event.id == "1"

            # Frozen: the listener's connection stays open but nothing moves.
            assert private_firestore.process is not None
            os.killpg(private_firestore.process.pid, signal.SIGSTOP)
            time.sleep(5)
            os.killpg(private_firestore.process.pid, signal.SIGCONT)
            committed = write_change(api.db, uid, f"{uid}-a", {"status": "failed"})
            event = next_of(stream, "changed", timeout=30)
            assert event.id == "2"
            assert event.received_at - committed < 5
        finally:
            stream.close()


# --- shutdown -------------------------------------------------------------------------


def test_sigterm_ends_every_stream_with_a_reconnect_event_within_the_grace_period(
    firestore: ManagedProcess, issuer: TestIssuer, uid: str
) -> None:
    with running_query_api(firestore.host, issuer) as api:
        proc = api.process
        streams = [open_stream(api, f"{uid}-{i}") for i in range(5)]
        try:
            for stream in streams:
                assert stream.next().event == "ready"
            assert proc.process is not None
            started = time.monotonic()
            proc.process.send_signal(signal.SIGTERM)
            for stream in streams:
                goodbye = next_of(stream, "reconnect", timeout=10)
                assert goodbye.json == {"reason": "shutdown"}
                assert stream.ended.wait(10)
            closed_in = time.monotonic() - started
            exit_code = proc.process.wait(timeout=15)
            exited_in = time.monotonic() - started
            # Well inside uvicorn's 10 s graceful shutdown (and Kubernetes' 30 s grace).
            assert closed_in < 5, closed_in
            assert exited_in < 10, exited_in
            # uvicorn re-raises the signal once its graceful shutdown is done.
            assert exit_code in (0, -signal.SIGTERM), proc.tail()
            assert "unhandled_error" not in proc.log_path.read_text(errors="replace")
        finally:
            for stream in streams:
                stream.close()
