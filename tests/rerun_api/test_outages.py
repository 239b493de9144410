"""Outages, each on private emulators stopped (or frozen) and brought back on the same port.

Pub/Sub down: a rerun is still accepted (202), stays queued with its outbox marker, and
once Pub/Sub is back the reconciler publishes it exactly once.
Firestore down: requests answer 503 with a JSON reason and nothing is published.
Neither fails a readiness probe: the replicas stay in the load balancer and answer for
themselves; the outage shows in `flokraft_dependency_up`, the logs and /readyz's body.
"""

from __future__ import annotations

import os
import signal
import time
import uuid

import httpx
import pytest

from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.probes import metric_value
from flokraft_devstack.processes import ManagedProcess, wait_until
from tests.rerun_api.conftest import firestore_client, start_rerun_api
from tests.rerun_api.support import apply_pubsub, jobs_for, pull_jobs, read, seed, video_of
from tests.support.kubelet import Prober, pod_shape

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
        DEPENDENCY_CHECK_INTERVAL_SECONDS="0.5",
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
            # Ready all the same (the outbox rides it out); the outage is in the metrics.
            assert http.get("/readyz").status_code == 200
            assert wait_until(
                lambda: (
                    metric_value(api.url, "flokraft_dependency_up", dependency="pubsub_topic") == 0
                    and http.get("/readyz").json()["dependencies"]["pubsub_topic"] != "ok"
                ),
                15,
            ), api.tail()

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
        DEPENDENCY_CHECK_INTERVAL_SECONDS="0.5",
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
            assert readyz.status_code == 200
            assert wait_until(
                lambda: http.get("/readyz").json()["dependencies"]["firestore"] != "ok", 15
            ), api.tail()
            assert metric_value(api.url, "flokraft_dependency_up", dependency="firestore") == 0
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


STALL_SECONDS = 15


@pytest.mark.parametrize("stalled", ["firestore", "pubsub"])
def test_a_15_s_stall_fails_no_probe_and_every_request_gets_an_answer(
    private_firestore: ManagedProcess,
    private_pubsub: ManagedProcess,
    issuer: TestIssuer,
    project_id: str,
    stalled: str,
) -> None:
    """Frozen, not stopped: calls hang until their deadline, as in a real outage. A
    Firestore stall answers 503 + Retry-After; a Pub/Sub stall still accepts (202, the
    outbox publishes later). Either way every probe passes."""
    apply_pubsub(project_id)
    api = start_rerun_api(
        project_id, issuer, PUBLISH_TIMEOUT_SECONDS="1", MAX_ACTIVE_ANALYSES_PER_USER="1000"
    )
    headers = issuer.headers("alice")
    prober = Prober(api.url, 0.5, pod_shape("rerun-api").timeout, 1)  # 10x the chart's rate
    frozen = private_firestore if stalled == "firestore" else private_pubsub
    assert frozen.process is not None
    try:
        with httpx.Client(base_url=api.url, timeout=30) as http:
            assert wait_until(lambda: prober.probe_once().ok, 30), api.tail()
            assert http.post("/analyses", json=BODY, headers=headers).status_code == 201
            prober.start()
            os.killpg(frozen.process.pid, signal.SIGSTOP)
            stalled_at = time.monotonic()
            answers = []
            try:
                while time.monotonic() - stalled_at < STALL_SECONDS:
                    started = time.monotonic()
                    response = http.post("/analyses", json=BODY, headers=headers)
                    answers.append((response, time.monotonic() - started))
            finally:
                os.killpg(frozen.process.pid, signal.SIGCONT)
            prober.stop()

            assert answers
            for response, elapsed in answers:
                if stalled == "firestore":
                    assert response.status_code == 503, response.text
                    assert int(response.headers["retry-after"]) > 0
                else:
                    # Committed; the job waits in the outbox (publish_pending).
                    assert response.status_code == 201, response.text
                assert elapsed < 10, elapsed  # the calls' own deadlines, with margin
            during = [p for p in prober.results if p.at >= stalled_at]
            assert len(during) >= STALL_SECONDS
            assert prober.failures() == [], prober.failures()
            latencies = sorted(elapsed for _, elapsed in answers)
            print(
                f"\nrerun-api, {STALL_SECONDS} s {stalled} stall: {len(during)} probes, "
                f"0 failed; {len(answers)} requests, all {answers[0][0].status_code}, "
                f"{latencies[len(latencies) // 2]:.2f} s median, {latencies[-1]:.2f} s max"
            )
    finally:
        prober.stop()
        api.stop()
