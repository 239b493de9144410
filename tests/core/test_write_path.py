"""The command side and the job side agree on what a document's generation is, and their
writes follow the status table (against the real Firestore emulator)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.cloud import firestore

from analyzer.job_store import AnalysisJobStore, ClaimOutcome
from flokraft_devstack.processes import ManagedProcess
from rerun_api.commands import AnalysisCommands

COLLECTION = "analyses"
MARKERS = "analysis_feeds"


@pytest.fixture
def db(firestore: ManagedProcess, project_id: str) -> Iterator[firestore.Client]:
    client = firestore_client(project_id)
    yield client
    client.close()  # type: ignore[no-untyped-call]


def firestore_client(project: str) -> firestore.Client:
    return firestore.Client(project=project)


def store(db: firestore.Client, owner: str = "worker-1") -> AnalysisJobStore:
    return AnalysisJobStore(
        db, COLLECTION, markers_collection=MARKERS, owner=owner, timeout=5, lease_seconds=60
    )


def pending(project: str) -> list[Any]:
    async def scan() -> list[Any]:
        client = firestore.AsyncClient(project=project)
        try:
            commands = AnalysisCommands(
                client, COLLECTION, markers_collection=MARKERS, rpc_timeout=5
            )
            return await commands.find_pending_publishes(older_than=timedelta(0), limit=10)
        finally:
            client.close()

    return asyncio.run(scan())


def test_a_pending_generation_0_document_is_run_not_left_queued(
    db: firestore.Client, project_id: str
) -> None:
    # The reconciler republishes what find_pending_publishes names; the worker must
    # accept that generation as the document's current one, or the job is acked as stale
    # and the analysis stays queued forever.
    old = datetime.now(UTC) - timedelta(minutes=5)
    db.collection(COLLECTION).document("g0").set(
        {
            "user_id": "u1",
            "status": "queued",
            "generation": 0,
            "publish_pending": True,
            "updated_at": old,
            "timestamp": old,
        }
    )
    [found] = pending(project_id)
    jobs = store(db)
    claim = jobs.claim("g0", found.generation)
    assert claim.outcome is ClaimOutcome.CLAIMED
    assert jobs.complete("g0", found.generation, metrics={"total_score": 70.0}, text="ok")
    assert db.collection(COLLECTION).document("g0").get().to_dict()["status"] == "done"


def test_a_duplicate_that_finishes_after_a_requeue_completes_the_analysis(
    db: firestore.Client,
) -> None:
    db.collection(COLLECTION).document("dup").set(
        {"user_id": "u1", "status": "queued", "generation": 1}
    )
    first, second = store(db, "w1"), store(db, "w2")
    assert first.claim("dup", 1).outcome is ClaimOutcome.CLAIMED
    # w1 gives the job back (shutdown); w2's earlier delivery still finishes it.
    assert first.record_failed_attempt("dup", 1, "the worker shut down")
    assert second.complete("dup", 1, metrics={"total_score": 1.0}, text="late")
    data = db.collection(COLLECTION).document("dup").get().to_dict()
    assert (data["status"], data["completions"]) == ("done", 1)
    assert not first.complete("dup", 1, metrics={}, text="again")
