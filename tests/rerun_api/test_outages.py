"""Outages, each on private emulators stopped and restarted on the same port.

Pub/Sub down: a rerun is still accepted (202), stays queued with its outbox marker, and
once Pub/Sub is back the reconciler publishes it exactly once.
Firestore down: requests answer 503 with a JSON reason and nothing is published.
"""

from __future__ import annotations

import time
import uuid

import httpx

from tests.rerun_api.conftest import firestore_client, start_rerun_api
from tests.rerun_api.support import apply_pubsub, jobs_for, pull_jobs, read, seed, video_of
from tests.support.auth import TestIssuer
from tests.support.polling import metric_value, wait_until
from tests.support.processes import ManagedProcess

BODY = {
    "video_url": video_of("alice"),
    "dance_type": "salsa",
    "dancers": ["lead", "follow"],
    "analysis_type": "couple",
}


def assert_delivered_once(project: str, analysis_id: str, generation: int) -> None:
    """Exactly one job for this analysis reached the analyzer's subscription.
    (The end-to-end version runs the analyzer here and checks it ran once.)"""
    messages = pull_jobs(project, wait_seconds=10, expect=1)
    messages += pull_jobs(project, wait_seconds=2)  # and nothing more arrives
    assert [job.generation for job in jobs_for(messages, analysis_id)] == [generation]


def test_pubsub_outage_rerun_is_accepted_and_the_outbox_publishes_it_once(
    firestore: ManagedProcess,
    private_pubsub: ManagedProcess,
    issuer: TestIssuer,
    project_id: str,
) -> None:
    apply_pubsub(project_id)
    db = firestore_client(project_id)
    analysis_id = f"a-{uuid.uuid4().hex[:12]}"
    seed(db, analysis_id, user="alice", generation=1)
    api = start_rerun_api(
        project_id,
        issuer,
        PUBSUB_EMULATOR_HOST=private_pubsub.host,
        PUBLISH_TIMEOUT_SECONDS="1",
        OUTBOX_MAX_AGE_SECONDS="3",
        OUTBOX_SCAN_INTERVAL_SECONDS="0.5",
    )
    try:
        with httpx.Client(base_url=api.url, timeout=15) as http:
            private_pubsub.stop()

            response = http.post(f"/analyses/{analysis_id}/rerun", headers=issuer.headers("alice"))

            assert response.status_code == 202, response.text
            assert response.json()["generation"] == 2
            assert response.json()["published"] is False
            doc = read(db, analysis_id)
            assert (doc["status"], doc["generation"], doc["publish_pending"]) == ("queued", 2, True)
            assert http.get("/readyz").status_code == 503

            # The reconciler keeps failing while Pub/Sub is down, and keeps the marker.
            assert wait_until(
                lambda: metric_value(api.url, "rerun_api_outbox_republish_failed_total") >= 1, 30
            ), api.tail()
            assert read(db, analysis_id)["publish_pending"] is True
            assert http.get("/healthz").status_code == 200

            private_pubsub.start(timeout=30)  # same port, like Pub/Sub coming back
            apply_pubsub(project_id)

            assert wait_until(lambda: not read(db, analysis_id)["publish_pending"], 60), api.tail()
            assert_delivered_once(project_id, analysis_id, 2)
            doc = read(db, analysis_id)
            assert (doc["status"], doc["generation"]) == ("queued", 2)
            assert metric_value(api.url, "rerun_api_outbox_republished_total") == 1
    finally:
        api.stop()
        db.close()


def test_firestore_outage_answers_503_and_publishes_nothing(
    pubsub: ManagedProcess,
    private_firestore: ManagedProcess,
    issuer: TestIssuer,
    project_id: str,
) -> None:
    apply_pubsub(project_id)
    db = firestore_client(project_id)
    analysis_id = f"a-{uuid.uuid4().hex[:12]}"
    seed(db, analysis_id, user="alice")
    api = start_rerun_api(
        project_id,
        issuer,
        FIRESTORE_EMULATOR_HOST=private_firestore.host,
        OUTBOX_MAX_AGE_SECONDS="0",
        OUTBOX_SCAN_INTERVAL_SECONDS="0.5",
    )
    try:
        with httpx.Client(base_url=api.url, timeout=30) as http:
            private_firestore.stop()
            headers = issuer.headers("alice")

            for method_path, kwargs in (
                ("/analyses", {"json": BODY}),
                ("/analyses", {"json": BODY, "headers": {**headers, "Idempotency-Key": "k1"}}),
                (f"/analyses/{analysis_id}/rerun", {}),
            ):
                started = time.monotonic()
                response = http.post(method_path, **{"headers": headers, **kwargs})
                assert response.status_code == 503, response.text
                assert response.json()["error"]["code"] == "unavailable"
                assert response.headers["retry-after"]
                # Bounded by FIRESTORE_TIMEOUT_SECONDS=2, not the client's 60 s default.
                assert time.monotonic() - started < 15

            readyz = http.get("/readyz")
            assert readyz.status_code == 503
            assert readyz.json()["checks"]["firestore"] != "ok"
            assert pull_jobs(project_id, wait_seconds=2) == []

            # The reconciler's passes fail without ending its loop or the process.
            assert wait_until(
                lambda: metric_value(api.url, "rerun_api_outbox_scan_failures_total") >= 2, 30
            ), api.tail()
            assert http.get("/healthz").status_code == 200

            private_firestore.start(timeout=30)  # same port, like Firestore coming back
            assert wait_until(
                lambda: http.post("/analyses", json=BODY, headers=headers).status_code == 201,
                60,
                interval=1,
            ), api.tail()
    finally:
        api.stop()
        db.close()
