"""Stopping a running analysis, end to end: a create through rerun-api, the analyzer
running it in a child, then a cancel, a delete, or an admin's rerun or fail (of stuck
work) through rerun-api. The worker notices at its next progress write (its lease renewal,
PROGRESS_INTERVAL_SECONDS = 2 s, the default) and kills the child; the old run's result
never lands, and a deleted analysis never comes back.

The engine spends SLOW_ENGINE_SECONDS reporting progress before it runs the real analysis,
so a result that did land would land well within the test's wait.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from google.cloud import firestore as gfs

from analyzer.engine.synthetic import write_dance_video
from flokraft_devstack.components import service
from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.probes import metric_value
from flokraft_devstack.processes import ManagedProcess, wait_until
from flokraft_devstack.settings import REPO_ROOT
from tests.query_api.conftest import start_query_api
from tests.rerun_api.conftest import start_rerun_api
from tests.rerun_api.support import apply_pubsub

ENGINE_SECONDS = 12
PROGRESS_INTERVAL_SECONDS = 2.0
# The notice takes at most one progress interval plus a transaction; the machine is shared.
NOTICE_BUDGET_SECONDS = PROGRESS_INTERVAL_SECONDS + 6


@dataclass
class Stack:
    rerun_api: ManagedProcess
    query_api: ManagedProcess
    analyzer: ManagedProcess
    issuer: TestIssuer
    db: gfs.Client
    video: Path

    def create(self, uid: str) -> str:
        body = {
            "video_url": self.video.as_uri(),
            "dance_type": "salsa",
            "dancers": ["ana", "ben"],
            "analysis_type": "couple",
        }
        response = httpx.post(
            f"{self.rerun_api.url}/analyses",
            json=body,
            headers=self.issuer.headers(uid),
            timeout=20,
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def call(
        self, method: str, path: str, uid: str, *, admin: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """`method path` on rerun-api (paths under /analyses) or, for GET, query-api."""
        base = self.query_api.url if method == "GET" else self.rerun_api.url
        headers = self.issuer.headers(uid, admin=admin)
        return httpx.request(method, f"{base}{path}", headers=headers, timeout=20, **kwargs)

    def doc(self, analysis_id: str) -> dict[str, Any] | None:
        return self.db.collection("analyses").document(analysis_id).get().to_dict()

    def children(self) -> list[psutil.Process]:
        assert self.analyzer.process is not None
        worker = psutil.Process(self.analyzer.process.pid)
        return [
            child
            for child in worker.children(recursive=True)
            if "analyzer.child" in " ".join(child.cmdline())
        ]

    def logs(self) -> str:
        return (
            f"--- rerun-api ---\n{self.rerun_api.tail()}\n--- analyzer ---\n{self.analyzer.tail()}"
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
    video = tmp_path / "slow-dance.mp4"
    write_dance_video(video, duration_seconds=4, bpm=120, dancers="mirrored", size=(320, 180))
    files = {"ALLOW_FILE_URLS": "true", "ALLOWED_FILE_ROOTS": json.dumps([str(tmp_path)])}
    rerun_api = start_rerun_api(project_id, issuer, **files)
    query_api = start_query_api(firestore.host, issuer, project_id)
    analyzer = service(
        "analyzer",
        "analyzer.main",
        {
            "GOOGLE_CLOUD_PROJECT": project_id,
            "FIRESTORE_EMULATOR_HOST": firestore.host,
            "PUBSUB_EMULATOR_HOST": pubsub.host,
            "PYTHONPATH": str(REPO_ROOT),
            "ENGINE": "tests.analyzer.faulty_engines:by_file_name",
            "SLOW_ENGINE_SECONDS": str(ENGINE_SECONDS),
            "PROGRESS_INTERVAL_SECONDS": str(PROGRESS_INTERVAL_SECONDS),
            "HEARTBEAT_TIMEOUT_SECONDS": "120",
            "MEMORY_LOG_INTERVAL_SECONDS": "3600",
            **files,
        },
    ).start(ready_path="/healthz", timeout=60)
    db = gfs.Client(project=project_id)
    try:
        yield Stack(rerun_api, query_api, analyzer, issuer, db, video)
    finally:
        analyzer.stop(timeout=30)
        query_api.stop()
        rerun_api.stop()
        db.close()


def wait_running(stack: Stack, analysis_id: str) -> list[psutil.Process]:
    """Until the analysis runs in a child that has reported progress; returns the child."""
    assert wait_until(
        lambda: (stack.doc(analysis_id) or {}).get("progress", 0) > 0 and stack.children(), 60
    ), stack.logs()
    return stack.children()


def stop_running(
    stack: Stack,
    uid: str,
    method: str,
    path: str,
    expect: int,
    *,
    analysis_id: str | None = None,
    **kwargs: Any,
) -> tuple[str, httpx.Response]:
    """Creates an analysis for `uid` (unless given one), waits until its child runs, sends
    `method path` (`{id}` in it is the analysis), and checks the child is stopped within
    the notice budget. Returns the analysis id and the answer."""
    analysis_id = analysis_id or stack.create(uid)
    children = wait_running(stack, analysis_id)
    started = time.monotonic()
    response = stack.call(method, path.format(id=analysis_id), uid, **kwargs)
    assert response.status_code == expect, response.text
    _, alive = psutil.wait_procs(children, timeout=NOTICE_BUDGET_SECONDS + 10)
    assert not alive, f"the child still runs\n{stack.logs()}"
    elapsed = time.monotonic() - started
    assert elapsed < NOTICE_BUDGET_SECONDS, f"{elapsed:.1f} s\n{stack.logs()}"
    print(f"{method} {path} -> child stopped: {elapsed:.2f} s")
    return analysis_id, response


def assert_superseded_once(stack: Stack) -> None:
    """The worker stopped one child because its job was no longer its own."""
    assert metric_value(stack.analyzer.url, "analyzer_jobs_total", outcome="superseded") == 1
    assert metric_value(stack.analyzer.url, "analyzer_child_kills_total", reason="superseded") == 1


def wait_done(stack: Stack, analysis_id: str) -> dict[str, Any]:
    assert wait_until(
        lambda: (stack.doc(analysis_id) or {}).get("status") == "done", ENGINE_SECONDS + 60
    ), stack.logs()
    return stack.doc(analysis_id) or {}


def test_cancel_of_a_running_job_stops_its_child_and_the_result_never_lands(
    stack: Stack,
) -> None:
    analysis_id, _ = stop_running(stack, "alice", "POST", "/analyses/{id}/cancel", 200)

    # Past the time the engine would have needed to finish: nothing landed.
    time.sleep(ENGINE_SECONDS + 3)
    doc = stack.doc(analysis_id) or {}
    assert doc["status"] == "cancelled", stack.logs()
    assert doc.get("completions") is None
    assert doc.get("text") is None
    assert doc["total_score"] is None
    assert doc["error"] == "cancelled by its owner"
    assert stack.children() == []
    assert_superseded_once(stack)
    assert stack.call("GET", f"/analyses/{analysis_id}", "alice").json()["status"] == "cancelled"

    # A cancelled analysis may be rerun, and that run completes.
    rerun = stack.call("POST", f"/analyses/{analysis_id}/rerun", "alice")
    assert rerun.status_code == 202, rerun.text
    assert wait_done(stack, analysis_id)["completions"] == 1


def test_delete_of_a_running_job_stops_it_and_the_document_never_comes_back(
    stack: Stack,
) -> None:
    analysis_id, _ = stop_running(stack, "bob", "DELETE", "/analyses/{id}", 204)
    # Gone from the detail and the list.
    assert stack.call("GET", f"/analyses/{analysis_id}", "bob").status_code == 404
    listed = stack.call("GET", "/analyses", "bob")
    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()] == []

    # No completion, progress, retry or dead-letter write brings it back.
    deadline = time.monotonic() + ENGINE_SECONDS + 5
    while time.monotonic() < deadline:
        assert stack.doc(analysis_id) is None, stack.logs()
        time.sleep(0.5)
    assert metric_value(stack.analyzer.url, "analyzer_jobs_total", outcome="superseded") == 1
    assert stack.call("DELETE", f"/analyses/{analysis_id}", "bob").status_code == 404


def test_an_admins_rerun_of_a_running_job_fences_the_old_run_and_runs_once_more(
    stack: Stack,
) -> None:
    # The owner may not rerun work in progress; an admin may (stuck work).
    analysis_id = stack.create("carol")
    wait_running(stack, analysis_id)
    owner = stack.call("POST", f"/analyses/{analysis_id}/rerun", "carol")
    assert owner.status_code == 409, owner.text
    assert owner.json()["error"]["code"] == "already_queued"

    _, response = stop_running(
        stack, "carol", "POST", "/analyses/{id}/rerun", 202, analysis_id=analysis_id, admin=True
    )
    assert response.json()["generation"] == 2

    # The old run's child is gone and its result never lands; the new generation runs
    # to the end, once.
    doc = wait_done(stack, analysis_id)
    assert (doc["generation"], doc["completed_generation"], doc["completions"]) == (2, 2, 1)
    assert_superseded_once(stack)
    assert metric_value(stack.analyzer.url, "analyzer_jobs_total", outcome="done") == 1


def test_an_admins_fail_of_a_running_job_stops_it_with_the_reason(stack: Stack) -> None:
    reason = "the upload was broken; upload the video again and rerun"
    analysis_id, response = stop_running(
        stack, "dave", "POST", "/analyses/{id}/fail", 200, admin=True, json={"reason": reason}
    )
    assert (response.json()["status"], response.json()["error"]) == ("failed", reason)

    time.sleep(ENGINE_SECONDS + 3)
    doc = stack.doc(analysis_id) or {}
    assert (doc["status"], doc["error"]) == ("failed", reason), stack.logs()
    assert doc.get("completions") is None
    assert_superseded_once(stack)
    detail = stack.call("GET", f"/analyses/{analysis_id}", "dave").json()
    assert (detail["status"], detail["error"]) == ("failed", reason)
