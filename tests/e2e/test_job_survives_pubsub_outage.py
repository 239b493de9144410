"""End to end across the services: a rerun made while Pub/Sub is unreachable is accepted,
kept in the outbox, published once Pub/Sub answers again, and run by the analyzer exactly
once. A timed-out publish may still land late beside the reconciler's, and the test then
publishes the same job once more on purpose: duplicates must be harmless.

The outage is a frozen emulator (SIGSTOP): requests hang and time out as in a real outage,
and Pub/Sub keeps its topics and subscriptions, as the real service would.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path

import httpx
from google.cloud import firestore as gfs

from analyzer.engine.synthetic import write_dance_video
from flokraft_core.messaging.job_message import new_job
from flokraft_core.messaging.publisher import JobPublisher
from flokraft_core.messaging.topology import apply_topology, load_topology
from flokraft_core.settings import CoreSettings
from flokraft_devstack.components import service
from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.processes import ManagedProcess, wait_until
from tests.rerun_api.support import seed


def test_rerun_during_a_pubsub_outage_runs_exactly_once(
    firestore: ManagedProcess,
    private_pubsub: ManagedProcess,
    issuer: TestIssuer,
    project_id: str,
    tmp_path: Path,
) -> None:
    apply_topology(project_id, load_topology())
    video = tmp_path / "clip.mp4"
    write_dance_video(video, duration_seconds=4, bpm=120, dancers="mirrored", size=(320, 180))
    db = gfs.Client(project=project_id)
    analysis_id = f"e2e-{uuid.uuid4().hex[:12]}"
    seed(db, analysis_id, user="alice", generation=1, video_url=video.as_uri())
    ref = db.collection("analyses").document(analysis_id)

    common = {
        "GOOGLE_CLOUD_PROJECT": project_id,
        "FIRESTORE_EMULATOR_HOST": firestore.host,
        "PUBSUB_EMULATOR_HOST": private_pubsub.host,
        "MEMORY_LOG_INTERVAL_SECONDS": "3600",
    }
    rerun_api = service(
        "rerun-api",
        "rerun_api.main",
        {
            **common,
            **issuer.env(),
            "PUBLISH_TIMEOUT_SECONDS": "1",
            "FIRESTORE_TIMEOUT_SECONDS": "3",
            "OUTBOX_MAX_AGE_SECONDS": "2",
            "OUTBOX_SCAN_INTERVAL_SECONDS": "0.5",
        },
    ).start(ready_path="/readyz", timeout=60)
    analyzer = service(
        "analyzer",
        "analyzer.main",
        {
            **common,
            "ALLOW_FILE_URLS": "true",
            "ALLOWED_FILE_ROOTS": json.dumps([str(tmp_path)]),
            "HEARTBEAT_TIMEOUT_SECONDS": "120",
        },
    ).start(ready_path="/healthz", timeout=60)
    assert private_pubsub.process is not None
    try:
        with httpx.Client(base_url=rerun_api.url, timeout=20) as http:
            os.killpg(private_pubsub.process.pid, signal.SIGSTOP)

            response = http.post(f"/analyses/{analysis_id}/rerun", headers=issuer.headers("alice"))
            assert response.status_code == 202, response.text
            assert response.json()["generation"] == 2
            doc = ref.get().to_dict()
            assert (doc["status"], doc["generation"], doc["publish_pending"]) == ("queued", 2, True)

            # While Pub/Sub is down the reconciler fails and keeps the marker.
            time.sleep(4)
            assert ref.get().to_dict()["publish_pending"] is True
            assert ref.get().to_dict()["status"] == "queued"

            os.killpg(private_pubsub.process.pid, signal.SIGCONT)

            assert wait_until(lambda: (ref.get().to_dict() or {}).get("status") == "done", 120), (
                f"analysis not done\n--- rerun-api ---\n{rerun_api.tail()}\n"
                f"--- analyzer ---\n{analyzer.tail()}"
            )
            # A duplicate of the job (same generation) must be dismissed, not run again.
            publisher = JobPublisher(CoreSettings(google_cloud_project=project_id))
            try:
                publisher.publish(new_job(analysis_id, 2, "alice"), trace_id=None, timeout=10)
            finally:
                publisher.close()
            # Give every late or duplicate message time to arrive and be dismissed.
            time.sleep(8)
            doc = ref.get().to_dict()
            assert doc["publish_pending"] is False
            assert doc["status"] == "done"
            assert doc["generation"] == 2
            assert doc.get("completed_generation") == 2
            assert doc.get("completions") == 1, analyzer.tail()
            assert doc["total_score"] is not None
    finally:
        analyzer.stop(timeout=30)
        rerun_api.stop()
        db.close()
