"""Every writer bumps the change marker: a create and a rerun through rerun-api, a claim, a
completion, a failure and a requeue through the analyzer's job store (and once through the
real analyzer process) each make the owner's next conditional poll of query-api a 200
showing the change, while a progress write, and everything another user does, leaves the
tag valid (304)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from google.cloud import firestore as gfs

from analyzer.engine.synthetic import write_dance_video
from analyzer.job_store import AnalysisJobStore, ClaimOutcome
from flokraft_devstack.components import service
from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.probes import metric_value
from flokraft_devstack.processes import ManagedProcess, wait_until
from tests.query_api.conftest import start_query_api
from tests.rerun_api.conftest import start_rerun_api
from tests.rerun_api.support import apply_pubsub


@dataclass
class Poller:
    """One browser tab: polls the list with the tag it last got."""

    url: str
    issuer: TestIssuer
    uid: str
    etag: str | None = None

    def poll(self) -> httpx.Response:
        headers = self.issuer.headers(self.uid)
        if self.etag:
            headers["If-None-Match"] = self.etag
        response = httpx.get(f"{self.url}/analyses", headers=headers, timeout=15)
        assert response.status_code in (200, 304), response.text
        if response.status_code == 200:
            self.etag = response.headers["etag"]
        return response

    def changed(self) -> dict[str, dict[str, object]]:
        """The next poll must be a 200; returns its rows by id."""
        response = self.poll()
        assert response.status_code == 200, "a stale 304 after a change"
        return {row["id"]: row for row in response.json()}

    def unchanged(self) -> None:
        assert self.poll().status_code == 304


@dataclass
class Stack:
    query_api: ManagedProcess
    rerun_api: ManagedProcess
    issuer: TestIssuer
    db: gfs.Client
    project: str
    video: Path

    def tab(self, uid: str) -> Poller:
        tab = Poller(self.query_api.url, self.issuer, uid)
        tab.poll()
        return tab

    def create(self, uid: str) -> str:
        response = httpx.post(
            f"{self.rerun_api.url}/analyses",
            headers=self.issuer.headers(uid),
            json={
                "video_url": self.video.as_uri(),
                "dance_type": "salsa",
                "dancers": ["ana", "ben"],
                "analysis_type": "couple",
            },
            timeout=15,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def rerun(self, uid: str, analysis_id: str) -> None:
        response = httpx.post(
            f"{self.rerun_api.url}/analyses/{analysis_id}/rerun",
            headers=self.issuer.headers(uid),
            timeout=15,
        )
        assert response.status_code == 202, response.text

    def job_store(self) -> AnalysisJobStore:
        return AnalysisJobStore(
            self.db,
            "analyses",
            markers_collection="analysis_feeds",
            owner="test-worker",
            timeout=5,
            lease_seconds=60,
        )


@pytest.fixture
def stack(
    firestore: ManagedProcess,
    pubsub: ManagedProcess,
    issuer: TestIssuer,
    project_id: str,
    tmp_path: Path,
) -> Iterator[Stack]:
    apply_pubsub(project_id)
    video = tmp_path / "clip.mp4"
    write_dance_video(video, duration_seconds=3, bpm=120, dancers="mirrored", size=(160, 90))
    query_api = start_query_api(firestore.host, issuer, project_id)
    rerun_api = start_rerun_api(
        project_id,
        issuer,
        ALLOW_FILE_URLS="true",
        ALLOWED_FILE_ROOTS=json.dumps([str(tmp_path)]),
    )
    db = gfs.Client(project=project_id)
    try:
        yield Stack(query_api, rerun_api, issuer, db, project_id, video)
    finally:
        db.close()
        rerun_api.stop()
        query_api.stop()


def test_each_writer_makes_the_owners_next_poll_a_200(stack: Stack) -> None:
    other = stack.tab("bob")
    stack.create("bob")
    assert other.changed()
    alice = stack.tab("alice")
    store = stack.job_store()

    analysis_id = stack.create("alice")
    assert alice.changed()[analysis_id]["status"] == "queued"
    reads_before = metric_value(
        stack.query_api.url, "firestore_documents_read_total", route="/analyses"
    )
    alice.unchanged()
    reads = metric_value(stack.query_api.url, "firestore_documents_read_total", route="/analyses")
    assert reads - reads_before == 1

    assert store.claim(analysis_id, 1).outcome is ClaimOutcome.CLAIMED
    assert alice.changed()[analysis_id]["status"] == "running"

    assert store.write_progress(analysis_id, 1, 0.5)
    alice.unchanged()  # progress is not on the list

    assert store.complete(analysis_id, 1, metrics={"total_score": 77.0}, text="report")
    row = alice.changed()[analysis_id]
    assert (row["status"], row["processed"], row["total_score"]) == ("done", True, 77.0)

    stack.rerun("alice", analysis_id)
    assert alice.changed()[analysis_id]["status"] == "queued"

    assert store.claim(analysis_id, 2).outcome is ClaimOutcome.CLAIMED
    assert alice.changed()[analysis_id]["status"] == "running"
    assert store.record_failed_attempt(analysis_id, 2, "the analysis crashed")
    assert alice.changed()[analysis_id]["status"] == "queued"  # requeued for a retry

    assert store.claim(analysis_id, 2).outcome is ClaimOutcome.CLAIMED
    assert alice.changed()[analysis_id]["status"] == "running"
    assert store.mark_failed(analysis_id, 2, "gave up")
    assert alice.changed()[analysis_id]["status"] == "failed"
    alice.unchanged()

    # Nothing alice's analyses went through touched bob's list.
    other.unchanged()


def test_the_real_analyzer_moves_the_marker_to_done(
    stack: Stack, pubsub: ManagedProcess, tmp_path: Path
) -> None:
    analyzer = service(
        "analyzer",
        "analyzer.main",
        {
            "GOOGLE_CLOUD_PROJECT": stack.project,
            "ALLOW_FILE_URLS": "true",
            "ALLOWED_FILE_ROOTS": json.dumps([str(tmp_path)]),
            "HEARTBEAT_TIMEOUT_SECONDS": "120",
            "MEMORY_LOG_INTERVAL_SECONDS": "3600",
        },
    ).start(ready_path="/healthz", timeout=60)
    try:
        alice = stack.tab("carol")
        analysis_id = stack.create("carol")
        seen: list[str] = []

        def done() -> bool:
            response = alice.poll()
            if response.status_code == 200:
                rows = {row["id"]: row for row in response.json()}
                seen.append(str(rows[analysis_id]["status"]))
            return bool(seen) and seen[-1] == "done"

        assert wait_until(done, 120, interval=0.3), f"{seen}\n{analyzer.tail()}"
        # The worker's claim may come before the first poll; whatever was seen came in order.
        assert set(seen) <= {"queued", "running", "done"}
        alice.unchanged()
    finally:
        analyzer.stop(timeout=30)
