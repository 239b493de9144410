"""Stopping a running analysis, end to end: a create through rerun-api, the analyzer
running it in a child, then a cancel (or a delete) through rerun-api. The worker notices at
its next progress write (its lease renewal, PROGRESS_INTERVAL_SECONDS = 2 s, the default)
and kills the child; the result never lands, and a deleted analysis never comes back.

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
from tests.query_api.conftest import start_query_api
from tests.rerun_api.conftest import start_rerun_api
from tests.rerun_api.support import apply_pubsub
from tests.support.auth import TestIssuer
from tests.support.polling import metric_value, wait_until
from tests.support.processes import REPO_ROOT, ManagedProcess, service

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


def stopped_after(stack: Stack, children: list[psutil.Process], since: float) -> float:
    _, alive = psutil.wait_procs(children, timeout=NOTICE_BUDGET_SECONDS + 10)
    assert not alive, f"the child still runs\n{stack.logs()}"
    elapsed = time.monotonic() - since
    assert elapsed < NOTICE_BUDGET_SECONDS, f"{elapsed:.1f} s\n{stack.logs()}"
    return elapsed


def test_cancel_of_a_running_job_stops_its_child_and_the_result_never_lands(
    stack: Stack,
) -> None:
    analysis_id = stack.create("alice")
    children = wait_running(stack, analysis_id)

    started = time.monotonic()
    response = httpx.post(
        f"{stack.rerun_api.url}/analyses/{analysis_id}/cancel",
        headers=stack.issuer.headers("alice"),
        timeout=20,
    )
    assert response.status_code == 200, response.text
    elapsed = stopped_after(stack, children, started)
    print(f"cancel -> child stopped: {elapsed:.2f} s")

    # Past the time the engine would have needed to finish: nothing landed.
    time.sleep(ENGINE_SECONDS + 3)
    doc = stack.doc(analysis_id) or {}
    assert doc["status"] == "cancelled", stack.logs()
    assert doc.get("completions") is None
    assert doc.get("text") is None
    assert doc["total_score"] is None
    assert doc["error"] == "cancelled by its owner"
    assert stack.children() == []
    assert metric_value(stack.analyzer.url, "analyzer_jobs_total", outcome="superseded") == 1
    assert metric_value(stack.analyzer.url, "analyzer_child_kills_total", reason="superseded") == 1
    detail = httpx.get(
        f"{stack.query_api.url}/analyses/{analysis_id}",
        headers=stack.issuer.headers("alice"),
        timeout=20,
    )
    assert detail.json()["status"] == "cancelled"

    # A cancelled analysis may be rerun, and that run completes.
    rerun = httpx.post(
        f"{stack.rerun_api.url}/analyses/{analysis_id}/rerun",
        headers=stack.issuer.headers("alice"),
        timeout=20,
    )
    assert rerun.status_code == 202, rerun.text
    assert wait_until(
        lambda: (stack.doc(analysis_id) or {}).get("status") == "done", ENGINE_SECONDS + 60
    ), stack.logs()
    assert (stack.doc(analysis_id) or {})["completions"] == 1


def test_delete_of_a_running_job_stops_it_and_the_document_never_comes_back(
    stack: Stack,
) -> None:
    analysis_id = stack.create("bob")
    children = wait_running(stack, analysis_id)

    started = time.monotonic()
    response = httpx.delete(
        f"{stack.rerun_api.url}/analyses/{analysis_id}",
        headers=stack.issuer.headers("bob"),
        timeout=20,
    )
    assert response.status_code == 204, response.text
    # Gone at once from the detail and the list.
    detail = httpx.get(
        f"{stack.query_api.url}/analyses/{analysis_id}",
        headers=stack.issuer.headers("bob"),
        timeout=20,
    )
    assert detail.status_code == 404
    listed = httpx.get(
        f"{stack.query_api.url}/analyses", headers=stack.issuer.headers("bob"), timeout=20
    )
    assert listed.status_code == 200
    assert [row["id"] for row in listed.json()] == []

    elapsed = stopped_after(stack, children, started)
    print(f"delete -> child stopped: {elapsed:.2f} s")

    # No completion, progress, retry or dead-letter write brings it back.
    deadline = time.monotonic() + ENGINE_SECONDS + 5
    while time.monotonic() < deadline:
        assert stack.doc(analysis_id) is None, stack.logs()
        time.sleep(0.5)
    assert metric_value(stack.analyzer.url, "analyzer_jobs_total", outcome="superseded") == 1
    again = httpx.delete(
        f"{stack.rerun_api.url}/analyses/{analysis_id}",
        headers=stack.issuer.headers("bob"),
        timeout=20,
    )
    assert again.status_code == 404
