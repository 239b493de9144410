"""The command side's writes to the `analyses` collection, on the AsyncClient.

Every write that should end in a job message sets `publish_pending` (the outbox marker)
in the same write that changes the analysis, so a lost or failed publish is found again
by the reconciler (`find_pending_publishes`). The marker is cleared only for the
generation that was actually published.

Callers bound every call with `rpc_timeout` (seconds): transactions' begin/commit calls take
no timeout of their own, so those are bounded with `asyncio.wait_for`, and a timeout
surfaces as `TimeoutError` (a 503 in the web layer). A commit cut short that way may still
have landed; its `publish_pending` marker then makes the reconciler publish the job.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from flokraft_core.analyses import AnalysisType, Status
from flokraft_core.job_publisher import JobPublisher, PublishFailed
from flokraft_core.jobs import JobMessage, new_job
from flokraft_core.status import can_rerun

PENDING_FIELD: Final = "publish_pending"

T = TypeVar("T")


class AnalysisNotFound(LookupError):
    """No such analysis, or one the caller may not touch (not told apart on purpose)."""

    def __init__(self, analysis_id: str) -> None:
        super().__init__(f"analysis {analysis_id} not found")
        self.analysis_id = analysis_id


class AnalysisBusy(RuntimeError):
    """The analysis is already queued or running: a rerun would queue it twice."""

    def __init__(self, analysis_id: str, status: str, generation: int) -> None:
        super().__init__(f"analysis {analysis_id} is {status}")
        self.analysis_id = analysis_id
        self.status = status
        self.generation = generation


@dataclass(frozen=True)
class NewAnalysis:
    user_id: str
    video_url: str
    dance_type: str
    dancers: list[str] | str
    analysis_type: AnalysisType


@dataclass(frozen=True)
class QueuedAnalysis:
    """What a create or rerun committed; `job` is the message still to be published."""

    analysis_id: str
    generation: int
    status: Status
    data: dict[str, Any]
    job: JobMessage
    # When the write landed: lets the marker be cleared with one precondition write.
    written_at: datetime | None = None


@dataclass(frozen=True)
class PendingPublish:
    analysis_id: str
    generation: int
    requested_by: str


def _now() -> datetime:
    return datetime.now(UTC)


def _generation(data: dict[str, Any]) -> int:
    # Documents from the old backend have no generation: they count as the first.
    value = data.get("generation")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else 1


async def _bounded_transaction(call: Awaitable[T], rpc_timeout: float) -> T:
    try:
        return await asyncio.wait_for(call, timeout=rpc_timeout)
    except ValueError as exc:
        # The client turns a transaction that failed before it began (its rollback finds
        # no id) into a ValueError chained to the real reason: our timeout cancelling its
        # begin call (which retries for a minute on its own), or a Google error such as
        # contention that outlasted the client's retries. Both mean "unavailable".
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, asyncio.CancelledError):
            raise TimeoutError(f"transaction not done after {rpc_timeout} s") from exc
        if isinstance(cause, gexc.GoogleAPICallError | gexc.RetryError):
            raise gexc.ServiceUnavailable(f"transaction failed: {cause}") from exc  # type: ignore[no-untyped-call]
        raise


async def create_analysis(
    db: firestore.AsyncClient, collection: str, new: NewAnalysis, *, rpc_timeout: float
) -> QueuedAnalysis:
    ref = db.collection(collection).document()  # Firestore auto id
    now = _now()
    data: dict[str, Any] = {
        "user_id": new.user_id,
        "requested_by": new.user_id,
        "timestamp": now,
        "created_at": now,
        "updated_at": now,
        "video_url": new.video_url,
        "dance_type": new.dance_type,
        "dancers": new.dancers,
        "analysis_type": new.analysis_type.value,
        "status": Status.QUEUED.value,
        "processed": False,
        "total_score": None,
        "generation": 1,
        "attempts": 0,
        "progress": 0.0,
        "error": None,
        PENDING_FIELD: True,
    }
    result = await ref.create(data, timeout=rpc_timeout, retry=None)
    job = new_job(ref.id, 1, new.user_id)
    return QueuedAnalysis(ref.id, 1, Status.QUEUED, data, job, result.update_time)


async def rerun_analysis(
    db: firestore.AsyncClient,
    collection: str,
    analysis_id: str,
    *,
    requested_by: str,
    admin: bool,
    rpc_timeout: float,
) -> QueuedAnalysis:
    """One transaction: checks owner and status, then generation + 1, status queued,
    progress 0, error cleared, outbox marker set. Raises AnalysisNotFound / AnalysisBusy."""
    ref = db.collection(collection).document(analysis_id)

    @firestore.async_transactional
    async def run(transaction: firestore.AsyncTransaction) -> QueuedAnalysis:
        snapshot = await ref.get(transaction=transaction, timeout=rpc_timeout, retry=None)
        data = snapshot.to_dict() if snapshot.exists else None
        if data is None or (data.get("user_id") != requested_by and not admin):
            raise AnalysisNotFound(analysis_id)
        status = data.get("status")
        generation = _generation(data)
        if not can_rerun(status):
            raise AnalysisBusy(analysis_id, str(status), generation)
        changes: dict[str, Any] = {
            "generation": generation + 1,
            "status": Status.QUEUED.value,
            "progress": 0.0,
            "error": None,
            # A new run gets its own delivery budget and no stale worker lease.
            "attempts": 0,
            "lease_owner": None,
            "lease_until": None,
            "requested_by": requested_by,
            "updated_at": _now(),
            PENDING_FIELD: True,
        }
        transaction.update(ref, changes)
        job = new_job(analysis_id, generation + 1, requested_by)
        return QueuedAnalysis(analysis_id, generation + 1, Status.QUEUED, data | changes, job)

    transaction = db.transaction()
    queued = await _bounded_transaction(run(transaction), rpc_timeout)
    commit_time = getattr(transaction, "commit_time", None)
    if isinstance(commit_time, datetime):
        return dataclasses.replace(queued, written_at=commit_time)
    return queued


async def clear_publish_pending(
    db: firestore.AsyncClient,
    collection: str,
    analysis_id: str,
    generation: int,
    *,
    rpc_timeout: float,
    written_at: datetime | None = None,
) -> bool:
    """Clears the outbox marker only while the document is still at `generation`: a newer
    rerun's marker belongs to a publish that has not been confirmed yet.

    With `written_at` (when the marker was written) one write conditioned on the document
    being unchanged since then does it; if it has changed, a transaction checks the
    generation."""
    ref = db.collection(collection).document(analysis_id)
    if written_at is not None:
        try:
            await ref.update(
                {PENDING_FIELD: False, "updated_at": _now()},
                option=db.write_option(last_update_time=written_at),
                timeout=rpc_timeout,
                retry=None,
            )
            return True
        except gexc.FailedPrecondition:
            pass  # e.g. a worker already moved it to running: check the generation

    @firestore.async_transactional
    async def run(transaction: firestore.AsyncTransaction) -> bool:
        snapshot = await ref.get(
            [PENDING_FIELD, "generation"], transaction=transaction, timeout=rpc_timeout, retry=None
        )
        data = snapshot.to_dict() if snapshot.exists else None
        if not data or not data.get(PENDING_FIELD) or _generation(data) != generation:
            return False
        transaction.update(ref, {PENDING_FIELD: False, "updated_at": _now()})
        return True

    return await _bounded_transaction(run(db.transaction()), rpc_timeout)


async def publish_and_clear(
    db: firestore.AsyncClient,
    collection: str,
    publisher: JobPublisher,
    job: JobMessage,
    *,
    trace_id: str | None,
    publish_timeout: float,
    firestore_timeout: float,
    written_at: datetime | None = None,
) -> bool:
    """Publishes the job, then clears its marker. Returns whether the publish was
    confirmed; on any failure the marker stays and the reconciler retries later."""
    try:
        await asyncio.to_thread(publisher.publish, job, trace_id=trace_id, timeout=publish_timeout)
    except PublishFailed:
        return False
    await clear_publish_pending(
        db,
        collection,
        job.analysis_id,
        job.generation,
        rpc_timeout=firestore_timeout,
        written_at=written_at,
    )
    return True


async def find_pending_publishes(
    db: firestore.AsyncClient,
    collection: str,
    *,
    older_than: timedelta,
    limit: int,
    rpc_timeout: float,
) -> list[PendingPublish]:
    """Analyses whose marker has been set for longer than `older_than`, oldest first.
    Needs the (publish_pending, updated_at) index in firestore.indexes.json."""
    cutoff = _now() - older_than
    query = (
        db.collection(collection)
        .where(filter=FieldFilter(PENDING_FIELD, "==", True))
        .where(filter=FieldFilter("updated_at", "<", cutoff))
        .order_by("updated_at")
        .select(["generation", "user_id", "requested_by", "updated_at"])
        .limit(limit)
    )
    found: list[PendingPublish] = []
    for snapshot in await query.get(timeout=rpc_timeout, retry=None):
        data = snapshot.to_dict() or {}
        requested_by = data.get("requested_by") or data.get("user_id") or "reconciler"
        found.append(PendingPublish(snapshot.id, _generation(data), str(requested_by)[:128]))
    return found
