"""Helpers for rerun-api's integration tests: seeding documents, reading them back and
pulling job messages from the analyzer's subscription."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore, pubsub_v1

from flokraft_core.messaging.job_message import JobMessage, decode_job
from flokraft_core.messaging.topology import apply_topology, load_topology

COLLECTION = "analyses"
SUBSCRIPTION = "analysis-jobs-analyzer"


def video_of(user: str, name: str = "clip.mp4") -> str:
    """An address in `user`'s own folder of the upload bucket (VIDEO_URL_PREFIXES' default)."""
    return f"gs://flokraft-videos/{user}/{name}"


def apply_pubsub(project: str) -> None:
    apply_topology(project, load_topology())


def seed(
    db: firestore.Client,
    analysis_id: str,
    *,
    user: str,
    status: str = "done",
    generation: int = 1,
    **extra: Any,
) -> None:
    created = datetime.now(UTC) - timedelta(hours=1)
    db.collection(COLLECTION).document(analysis_id).set(
        {
            "user_id": user,
            "timestamp": created,
            "created_at": created,
            "updated_at": created,
            "dance_type": "salsa",
            "dancers": ["lead", "follow"],
            "analysis_type": "couple",
            "status": status,
            "processed": status == "done",
            "total_score": 80.0 if status == "done" else None,
            "text": "report",
            "video_url": f"gs://videos/{analysis_id}.mp4",
            "generation": generation,
            "attempts": 1,
            "progress": 1.0 if status == "done" else 0.3,
            "error": "boom" if status == "failed" else None,
            "publish_pending": False,
            **extra,
        }
    )


def new_id() -> str:
    return f"a-{uuid.uuid4().hex[:12]}"


def seed_in_progress(
    db: firestore.Client,
    analysis_id: str,
    *,
    user: str,
    status: str,
    generation: int,
    **extra: Any,
) -> None:
    """Seeds work in progress as the analyzer leaves it: `running` with worker-1's live
    lease, `queued` with no lease."""
    running = status == "running"
    seed(
        db,
        analysis_id,
        user=user,
        status=status,
        generation=generation,
        lease_owner="worker-1" if running else None,
        lease_until=datetime.now(UTC) + timedelta(minutes=5) if running else None,
        **extra,
    )


def read(db: firestore.Client, analysis_id: str) -> dict[str, Any]:
    snapshot = db.collection(COLLECTION).document(analysis_id).get()
    assert snapshot.exists, f"{analysis_id} missing"
    return snapshot.to_dict() or {}


def pull_jobs(
    project: str, *, wait_seconds: float = 3.0, expect: int | None = None
) -> list[tuple[JobMessage, dict[str, str], str]]:
    """Pulls (and acks) everything that arrives within `wait_seconds`; stops early once
    `expect` messages have arrived. Returns (job, attributes, ordering key) tuples."""
    subscriber = pubsub_v1.SubscriberClient()
    path = subscriber.subscription_path(project, SUBSCRIPTION)
    found: list[tuple[JobMessage, dict[str, str], str]] = []
    deadline = time.monotonic() + wait_seconds
    try:
        while time.monotonic() < deadline and (expect is None or len(found) < expect):
            try:
                response = subscriber.pull(
                    request={"subscription": path, "max_messages": 100}, timeout=1.0
                )
            except (gexc.DeadlineExceeded, gexc.ServiceUnavailable):
                continue
            if not response.received_messages:
                time.sleep(0.1)
                continue
            subscriber.acknowledge(
                request={
                    "subscription": path,
                    "ack_ids": [m.ack_id for m in response.received_messages],
                }
            )
            for received in response.received_messages:
                message = received.message
                attributes = dict(message.attributes)
                found.append(
                    (decode_job(message.data, attributes), attributes, message.ordering_key)
                )
    finally:
        subscriber.close()
    return found


def jobs_for(
    messages: list[tuple[JobMessage, dict[str, str], str]], analysis_id: str
) -> list[JobMessage]:
    return [job for job, _, _ in messages if job.analysis_id == analysis_id]
