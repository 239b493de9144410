"""The sweeper against a worker that stalls without dying: the analyzer runs a job and is
frozen (SIGSTOP, worker and child), so its lease is never renewed. rerun-api's sweeper
finds the analysis stale and re-dispatches it as a new generation. When the worker wakes,
its next progress write finds the generation moved on: it kills its child and writes
nothing for the old run, and the re-dispatched job runs to done once. No double run.

(A worker that stays frozen for good delays the re-dispatched message: its open stream is
handed the job's messages, which come back only when their 60 s stream lease lapses, and
the ordering key holds the new generation behind the old one. No run happens twice
either way.)"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from google.cloud import firestore as gfs

from analyzer.engine.synthetic import write_dance_video
from flokraft_core.messaging.topology import apply_topology
from flokraft_devstack.components import service
from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.probes import metric_value
from flokraft_devstack.processes import ManagedProcess, wait_until
from flokraft_devstack.settings import REPO_ROOT
from tests.analyzer.conftest import fast_topology
from tests.rerun_api.conftest import start_rerun_api

STALE_AFTER_SECONDS = 4


def analyzer(
    project: str, firestore: ManagedProcess, pubsub: ManagedProcess, videos: Path
) -> ManagedProcess:
    return service(
        "analyzer",
        "analyzer.main",
        {
            "GOOGLE_CLOUD_PROJECT": project,
            "FIRESTORE_EMULATOR_HOST": firestore.host,
            "PUBSUB_EMULATOR_HOST": pubsub.host,
            "PYTHONPATH": str(REPO_ROOT),
            "ENGINE": "tests.analyzer.faulty_engines:by_file_name",
            "SLOW_ENGINE_SECONDS": "8",
            "PROGRESS_INTERVAL_SECONDS": "0.5",
            "LEASE_SECONDS": "2",
            "HEARTBEAT_TIMEOUT_SECONDS": "300",
            "MEMORY_LOG_INTERVAL_SECONDS": "3600",
            "ALLOW_FILE_URLS": "true",
            "ALLOWED_FILE_ROOTS": json.dumps([str(videos)]),
        },
    ).start(ready_path="/healthz", timeout=60)


@pytest.fixture
def started() -> Iterator[list[ManagedProcess]]:
    processes: list[ManagedProcess] = []
    yield processes
    for process in reversed(processes):
        process.stop(timeout=30)


def test_a_frozen_workers_job_is_redispatched_and_completed_once(
    firestore: ManagedProcess,
    pubsub: ManagedProcess,
    issuer: TestIssuer,
    project_id: str,
    tmp_path: Path,
    started: list[ManagedProcess],
) -> None:
    apply_topology(project_id, fast_topology())
    video = tmp_path / "slow-dance.mp4"
    write_dance_video(video, duration_seconds=4, bpm=120, dancers="mirrored", size=(320, 180))
    rerun_api = start_rerun_api(
        project_id,
        issuer,
        ALLOW_FILE_URLS="true",
        ALLOWED_FILE_ROOTS=json.dumps([str(tmp_path)]),
        SWEEP_INTERVAL_SECONDS="0.5",
        SWEEP_RUNNING_AFTER_SECONDS=str(STALE_AFTER_SECONDS),
        # Long: only the running bound is under test (the re-dispatched message waits
        # behind the frozen worker's under their ordering key).
        SWEEP_QUEUED_AFTER_SECONDS="900",
    )
    started.append(rerun_api)
    first = analyzer(project_id, firestore, pubsub, tmp_path)
    started.append(first)
    db = gfs.Client(project=project_id)

    def doc() -> dict[str, Any]:
        return db.collection("analyses").document(analysis_id).get().to_dict() or {}

    def logs() -> str:
        return "\n".join(f"--- {p.name} ---\n{p.tail(30)}" for p in started)

    response = httpx.post(
        f"{rerun_api.url}/analyses",
        json={
            "video_url": video.as_uri(),
            "dance_type": "salsa",
            "dancers": ["ana", "ben"],
            "analysis_type": "couple",
        },
        headers=issuer.headers("alice"),
        timeout=20,
    )
    assert response.status_code == 201, response.text
    analysis_id = response.json()["id"]
    assert wait_until(lambda: doc().get("progress", 0) > 0, 60), logs()
    assert first.process is not None
    frozen = [psutil.Process(first.process.pid)]
    frozen += [
        c for c in frozen[0].children(recursive=True) if "analyzer.child" in c.cmdline()[2:3]
    ]
    assert len(frozen) == 2, frozen
    for process in frozen:
        process.send_signal(signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        assert wait_until(lambda: doc().get("generation") == 2, 30), logs()
        swept_after = time.monotonic() - frozen_at
        redispatched = doc()
        assert (redispatched["status"], redispatched["redispatches"]) == ("queued", 1)
        assert redispatched["lease_owner"] is None
    finally:
        for process in frozen:
            process.send_signal(signal.SIGCONT)

    # The worker wakes: its next progress write finds generation 2, so it kills its child
    # and writes nothing for generation 1; the re-dispatched job then runs once.
    worker = psutil.Process(first.process.pid)
    assert wait_until(
        lambda: metric_value(first.url, "analyzer_jobs_total", outcome="superseded") == 1, 30
    ), logs()
    assert not frozen[1].is_running() or frozen[1].status() == psutil.STATUS_ZOMBIE
    assert wait_until(lambda: doc().get("status") == "done", 120), logs()
    done = doc()
    assert (done["generation"], done["completed_generation"], done["completions"]) == (2, 2, 1)
    assert done["redispatches"] == 1
    time.sleep(3)
    assert doc()["completions"] == 1
    assert metric_value(first.url, "analyzer_child_kills_total", reason="superseded") == 1
    assert metric_value(rerun_api.url, "rerun_api_sweeper_swept_total", outcome="redispatched") == 1
    assert worker.is_running()
    print(f"frozen worker -> re-dispatched after {swept_after:.1f} s")
    db.close()
