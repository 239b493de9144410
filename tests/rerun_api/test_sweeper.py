"""The stale-work sweeper in a real rerun-api process, with short bounds: stale `running`
and `queued` analyses and the old backend's leftovers are re-dispatched as new generations
(published, marker moved), then failed with a readable reason once the re-dispatches are
used up; live work, publishes the outbox owns and documents without a status are left
alone."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from google.cloud.firestore import Client as FirestoreClient

from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.probes import metric_value
from flokraft_devstack.processes import ManagedProcess, wait_until
from tests.rerun_api.conftest import firestore_client, running_rerun_api
from tests.rerun_api.support import jobs_for, pull_jobs, read, seed

IDLE_SECONDS = 3.0
INTERVAL_SECONDS = 0.5
MAX_REDISPATCHES = 2
LONG_AGO = timedelta(hours=3)


@pytest.fixture
def swept(
    firestore: ManagedProcess, pubsub: ManagedProcess, issuer: TestIssuer
) -> Iterator[tuple[ManagedProcess, FirestoreClient]]:
    overrides = {
        "SWEEP_INTERVAL_SECONDS": str(INTERVAL_SECONDS),
        "SWEEP_RUNNING_AFTER_SECONDS": str(IDLE_SECONDS),
        "SWEEP_QUEUED_AFTER_SECONDS": str(IDLE_SECONDS),
        "SWEEP_MAX_REDISPATCHES": str(MAX_REDISPATCHES),
        # Long, so that only the sweeper moves what it finds here.
        "OUTBOX_MAX_AGE_SECONDS": "600",
    }
    with running_rerun_api(issuer, **overrides) as process:
        db = firestore_client(process.env["GOOGLE_CLOUD_PROJECT"])
        try:
            yield process, db
        finally:
            db.close()


def marker_version(db: FirestoreClient, user: str) -> int:
    return int((db.collection("analysis_feeds").document(user).get().to_dict() or {})["version"])


def stale(**extra: Any) -> dict[str, Any]:
    long_ago = datetime.now(UTC) - LONG_AGO
    return {"updated_at": long_ago, "created_at": long_ago, "timestamp": long_ago, **extra}


def test_stale_work_is_sent_again_then_failed_with_a_readable_reason(
    swept: tuple[ManagedProcess, FirestoreClient],
) -> None:
    process, db = swept
    project = process.env["GOOGLE_CLOUD_PROJECT"]
    user = f"u-{uuid.uuid4().hex[:8]}"
    ids = {name: f"{name}-{uuid.uuid4().hex[:8]}" for name in ("running", "queued", "legacy")}
    started = time.monotonic()
    seed(
        db,
        ids["running"],
        user=user,
        status="running",
        generation=3,
        lease_owner="dead-worker",
        lease_until=datetime.now(UTC) - LONG_AGO,
        **stale(),
    )
    seed(db, ids["queued"], user=user, status="queued", **stale())
    # What the old backend left when it was OOM-killed mid-run: a running row without
    # any bookkeeping (no generation, lease, updated_at).
    db.collection("analyses").document(ids["legacy"]).set(
        {
            "user_id": user,
            "timestamp": datetime.now(UTC) - LONG_AGO,
            "dance_type": "tango",
            "analysis_type": "couple",
            "status": "running",
            "processed": False,
            "video_url": "https://old.example/video.mp4",
        }
    )
    db.collection("analysis_feeds").document(user).set({"user_id": user, "version": 1})

    # First pass: each is re-dispatched as a new generation, published, and listed anew.
    def redispatched(analysis_id: str, times: int) -> bool:
        return read(db, analysis_id).get("redispatches") == times

    assert wait_until(lambda: all(redispatched(i, 1) for i in ids.values()), 30), process.tail()
    first_move = time.monotonic() - started
    running = read(db, ids["running"])
    assert (running["status"], running["generation"], running["attempts"]) == ("queued", 4, 0)
    assert running["lease_owner"] is None
    assert running["publish_pending"] is False  # published at once, marker cleared
    assert read(db, ids["queued"])["generation"] == 2
    legacy = read(db, ids["legacy"])
    assert (legacy["status"], legacy["generation"]) == ("queued", 2)
    assert marker_version(db, user) >= 3

    # Nobody runs them: after each idle bound they are sent again, then given up.
    def failed(analysis_id: str) -> bool:
        return read(db, analysis_id)["status"] == "failed"

    budget = (MAX_REDISPATCHES + 1) * (IDLE_SECONDS + 2 * INTERVAL_SECONDS) + 30
    assert wait_until(lambda: all(failed(i) for i in ids.values()), budget), process.tail()
    to_failed = time.monotonic() - started
    print(f"stale -> first re-dispatch {first_move:.1f} s, -> failed {to_failed:.1f} s")
    for analysis_id in ids.values():
        doc = read(db, analysis_id)
        assert doc["redispatches"] == MAX_REDISPATCHES
        assert doc["publish_pending"] is False
        assert doc["error"] == (
            "the analysis was never picked up and was given up after it was sent again "
            "2 times; rerun it to try again"
        )
    assert read(db, ids["running"])["generation"] == 5

    jobs = pull_jobs(project, wait_seconds=5, expect=3 * MAX_REDISPATCHES)
    assert [j.generation for j in jobs_for(jobs, ids["running"])] == [4, 5]
    assert [j.generation for j in jobs_for(jobs, ids["legacy"])] == [2, 3]
    assert [j.requested_by for j in jobs_for(jobs, ids["queued"])] == [user, user]
    redone = metric_value(process.url, "rerun_api_sweeper_swept_total", outcome="redispatched")
    assert redone == 3 * MAX_REDISPATCHES
    assert metric_value(process.url, "rerun_api_sweeper_swept_total", outcome="abandoned") == 3


def test_live_work_pending_publishes_and_statusless_documents_are_left_alone(
    swept: tuple[ManagedProcess, FirestoreClient],
) -> None:
    _, db = swept
    user = f"u-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    live = f"live-{uuid.uuid4().hex[:8]}"
    # A job whose worker renews its lease: last written now, lease running.
    seed(
        db,
        live,
        user=user,
        status="running",
        lease_owner="w",
        lease_until=now + timedelta(minutes=5),
        updated_at=now + timedelta(minutes=5),
    )
    pending = f"pending-{uuid.uuid4().hex[:8]}"
    # Older than the sweeper's bound, younger than the outbox's: the outbox's to publish.
    five_minutes_ago = now - timedelta(minutes=5)
    seed(db, pending, user=user, status="queued", publish_pending=True, updated_at=five_minutes_ago)
    statusless = f"old-{uuid.uuid4().hex[:8]}"
    old_doc = {"user_id": user, "timestamp": now - LONG_AGO, "processed": False}
    db.collection("analyses").document(statusless).set(old_doc)
    unknown = f"odd-{uuid.uuid4().hex[:8]}"
    db.collection("analyses").document(unknown).set({**old_doc, "status": "processing"})

    # Several passes, each of which would have moved them.
    time.sleep(IDLE_SECONDS + 6 * INTERVAL_SECONDS)

    assert read(db, live)["status"] == "running"
    assert read(db, live).get("redispatches") is None
    assert read(db, pending)["status"] == "queued"
    assert read(db, pending)["generation"] == 1
    assert read(db, statusless) == old_doc
    assert read(db, unknown) == {**old_doc, "status": "processing"}


def test_an_admin_unsticks_an_analysis_at_once(
    swept: tuple[ManagedProcess, FirestoreClient], issuer: TestIssuer
) -> None:
    process, db = swept
    analysis_id = f"stuck-{uuid.uuid4().hex[:8]}"
    seed(db, analysis_id, user="the-owner", status="running", generation=2)
    admin = issuer.headers("ops", admin=True)
    with httpx.Client(base_url=process.url, timeout=15) as http:
        # Its owner may not rerun work in progress; an admin restarts it in one call.
        owner = http.post(f"/analyses/{analysis_id}/rerun", headers=issuer.headers("the-owner"))
        assert owner.status_code == 409
        rerun = http.post(f"/analyses/{analysis_id}/rerun", headers=admin)

    assert rerun.status_code == 202, rerun.text
    doc = read(db, analysis_id)
    assert (doc["status"], doc["generation"], doc["user_id"]) == ("queued", 3, "the-owner")
