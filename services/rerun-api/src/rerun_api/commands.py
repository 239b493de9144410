"""The command side's writes to the `analyses` collection, on the AsyncClient.

Every write that should end in a job message sets `publish_pending` (the outbox marker)
in the same write that changes the analysis, so a lost or failed publish is found again
by the reconciler (`find_pending_publishes`). The marker is cleared only for the
generation that was actually published. Every write is staged by
flokraft_core.store.write_path.stage_write.

Create and rerun each run in one transaction that reads the owner's change marker, whose
active set (flokraft_core.store.change_markers) is the per-user cap: two creates of one user
conflict on that document, so the cap holds under concurrency. The same transaction may
read and write a `Receipt` (rerun-api's idempotency record), so the record lands exactly
when the analysis does: a commit that times out but lands leaves both, one that does not
land leaves neither. A create with an id (derived from the caller's Idempotency-Key) is a
must-not-exist create: whatever times out, there is never a second document.

Every call is bounded by `rpc_timeout` (seconds): transactions' begin/commit calls take
no timeout of their own, so those are bounded with `asyncio.wait_for`, and a timeout
surfaces as `TimeoutError` (a 503 in the web layer). A commit cut short that way may still
have landed; its `publish_pending` marker then makes the reconciler publish the job.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from flokraft_core.messaging.job_message import JobMessage, new_job
from flokraft_core.messaging.publisher import JobPublisher, PublishFailed
from flokraft_core.store.change_markers import ACTIVE_FIELD, active_ids, marker_id
from flokraft_core.store.document import (
    OWNER_FIELD,
    AnalysisType,
    Fields,
    Status,
    generation_of,
    utc_now,
)
from flokraft_core.store.read_costs import count_query, count_reads
from flokraft_core.store.status_table import Move, allows, can_rerun, is_active
from flokraft_core.store.write_path import stage_write

T = TypeVar("T")

# Attempts of one transaction when others commit first (Aborted). Creates of one user are
# serialised on their marker: a burst of n at a cap of c needs up to c + 1 attempts for the
# last one. The time budget still bounds the whole.
_MAX_ATTEMPTS = 12


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


class AtActiveCap(RuntimeError):
    """The owner already has `limit` analyses queued or running."""

    def __init__(self, active: int, limit: int) -> None:
        super().__init__(f"{active} analyses queued or running (the limit is {limit})")
        self.active = active
        self.limit = limit


class AnalysisExists(RuntimeError):
    """A create with a given id found the document already there (an earlier request with
    the same Idempotency-Key created it); `data` is the document."""

    def __init__(self, analysis_id: str, data: dict[str, Any]) -> None:
        super().__init__(f"analysis {analysis_id} already exists")
        self.analysis_id = analysis_id
        self.data = data


class Receipt(Protocol):
    """A document read and written in the command's own transaction: rerun-api's
    idempotency record. `found` sees it as read (None: absent) and says whether it holds
    an answer already, in which case the command writes nothing; otherwise `record` gives
    the document to store with the command's writes."""

    @property
    def ref(self) -> firestore.AsyncDocumentReference: ...

    def found(self, data: dict[str, Any] | None) -> bool: ...

    def record(self, queued: QueuedAnalysis) -> dict[str, Any]: ...


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


# Idempotency records named on one analysis; older ones have long expired (24 h TTL).
_MAX_RECORDS: Final = 50


def new_generation(generation: int) -> dict[str, Any]:
    """The changes that start run `generation` of an existing analysis (a rerun, an admin's
    restart, the sweeper's re-dispatch): its own delivery budget, no stale worker lease,
    and the outbox marker set so the job is published even if the request's publish is
    lost. The older generation's message and worker are refused from now on."""
    return {
        Fields.GENERATION: generation,
        Fields.PROGRESS: 0.0,
        Fields.ATTEMPTS: 0,
        Fields.LEASE_OWNER: None,
        Fields.LEASE_UNTIL: None,
        Fields.PUBLISH_PENDING: True,
    }


def with_record(data: dict[str, Any], record_id: str) -> list[str]:
    """The analysis's `idempotency_records` with `record_id` added: the keyed requests
    whose stored answers describe it, which a delete turns into tombstones."""
    known = data.get(Fields.IDEMPOTENCY_RECORDS)
    records = [r for r in known if isinstance(r, str)] if isinstance(known, list) else []
    if record_id not in records:
        records.append(record_id)
    return records[-_MAX_RECORDS:]


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


class AnalysisStore:
    """What the command side's writers share: the analyses and change-marker collections
    on the AsyncClient, and the one bounded transaction every command runs in."""

    # Attempts of one transaction when others commit first (Aborted); the client's default.
    max_attempts: int = 5

    def __init__(
        self,
        db: firestore.AsyncClient,
        collection: str,
        *,
        markers_collection: str,
        rpc_timeout: float,
    ) -> None:
        self._db = db
        self._collection = db.collection(collection)
        self._markers = db.collection(markers_collection)
        self._timeout = rpc_timeout

    def _ref(self, analysis_id: str) -> firestore.AsyncDocumentReference:
        return self._collection.document(analysis_id)

    async def _transact(
        self,
        run: Callable[[firestore.AsyncTransaction], Awaitable[T]],
    ) -> tuple[T, datetime | None]:
        """Runs `run` in one transaction within the time budget; returns its result and
        the commit time."""
        transaction = self._db.transaction(max_attempts=self.max_attempts)
        result = await _bounded_transaction(
            firestore.async_transactional(run)(transaction), self._timeout
        )
        commit_time = getattr(transaction, "commit_time", None)
        return result, commit_time if isinstance(commit_time, datetime) else None

    async def _read(
        self, transaction: firestore.AsyncTransaction, analysis_id: str
    ) -> dict[str, Any] | None:
        snapshot = await self._ref(analysis_id).get(
            transaction=transaction, timeout=self._timeout, retry=None
        )
        count_reads(1)
        return snapshot.to_dict() if snapshot.exists else None


class AnalysisCommands(AnalysisStore):
    """rerun-api's writes; one per process, built at start-up."""

    max_attempts = _MAX_ATTEMPTS

    def _marker(self, user_id: str) -> firestore.AsyncDocumentReference:
        return self._markers.document(marker_id(user_id))

    async def _read_many(
        self, transaction: firestore.AsyncTransaction, refs: list[firestore.AsyncDocumentReference]
    ) -> dict[str, dict[str, Any] | None]:
        """Documents by path, in one round trip (absent ones as None)."""
        found: dict[str, dict[str, Any] | None] = {ref.path: None for ref in refs}
        async for snapshot in self._db.get_all(
            refs, transaction=transaction, timeout=self._timeout, retry=None
        ):
            found[snapshot.reference.path] = snapshot.to_dict() if snapshot.exists else None
        count_reads(len(refs))
        return found

    async def _check_cap(
        self,
        transaction: firestore.AsyncTransaction,
        user_id: str,
        marker: dict[str, Any] | None,
        limit: int,
    ) -> None:
        """Raises AtActiveCap when `user_id`'s active set (read in this transaction) is
        full. At the cap, the ids are checked against their documents, and ids of analyses
        that are gone or no longer queued/running (moved by a write outside stage_write)
        are dropped from the set in this transaction, so drift can never lock a user out.
        Costs nothing below the cap."""
        ids = active_ids(marker)
        if len(ids) < limit:
            return
        documents = await self._read_many(transaction, [self._ref(i) for i in ids])
        live = [
            i
            for i in ids
            if (data := documents[self._ref(i).path]) is not None
            and data.get(OWNER_FIELD) == user_id
            and is_active(data.get(Fields.STATUS))
        ]
        if len(live) >= limit:
            raise AtActiveCap(len(live), limit)
        # Staged before the command's own write, which adds to the set after this.
        stale = [i for i in ids if i not in live]
        transaction.update(self._marker(user_id), {ACTIVE_FIELD: firestore.ArrayRemove(stale)})

    async def create(
        self,
        new: NewAnalysis,
        *,
        analysis_id: str | None = None,
        active_cap: int | None = None,
        receipt: Receipt | None = None,
    ) -> QueuedAnalysis | None:
        """Creates the analysis (queued, outbox marker set) in one transaction.

        `analysis_id`: the id to create (must not exist; derived from an Idempotency-Key);
        None: a Firestore auto id. `active_cap`: refuse with AtActiveCap when the owner
        already has that many queued or running. `receipt`: read first; returns None (and
        writes nothing) when it already holds an answer. Raises AnalysisExists when the id
        is taken."""
        ref = self._ref(analysis_id) if analysis_id is not None else self._collection.document()
        marker_ref = self._marker(new.user_id)

        async def run(transaction: firestore.AsyncTransaction) -> QueuedAnalysis | None:
            refs = [marker_ref] + ([receipt.ref] if receipt is not None else [])
            documents = await self._read_many(transaction, refs)
            if receipt is not None and receipt.found(documents[receipt.ref.path]):
                return None
            if active_cap is not None:
                await self._check_cap(
                    transaction, new.user_id, documents[marker_ref.path], active_cap
                )
            now = utc_now()
            data: dict[str, Any] = {
                OWNER_FIELD: new.user_id,
                Fields.REQUESTED_BY: new.user_id,
                Fields.TIMESTAMP: now,
                Fields.CREATED_AT: now,
                Fields.UPDATED_AT: now,
                Fields.VIDEO_URL: new.video_url,
                Fields.DANCE_TYPE: new.dance_type,
                Fields.DANCERS: new.dancers,
                Fields.ANALYSIS_TYPE: new.analysis_type.value,
                Fields.PROCESSED: False,
                Fields.TOTAL_SCORE: None,
                Fields.GENERATION: 1,
                Fields.ATTEMPTS: 0,
                Fields.PROGRESS: 0.0,
                Fields.ERROR: None,
                Fields.PUBLISH_PENDING: True,
            }
            if receipt is not None:
                data[Fields.IDEMPOTENCY_RECORDS] = [receipt.ref.id]
            staged = stage_write(
                transaction, ref, Move.CREATE, data, before=None, markers=self._markers
            )
            job = new_job(ref.id, 1, new.user_id)
            queued = QueuedAnalysis(ref.id, 1, Status.QUEUED, staged.changes, job)
            if receipt is not None:
                transaction.set(receipt.ref, receipt.record(queued))
            return queued

        try:
            queued, commit_time = await self._transact(run)
        except gexc.AlreadyExists:
            if analysis_id is None:
                raise
            # Created by an earlier request with the same key whose record is gone (or
            # never part of it): that document is the answer.
            snapshot = await ref.get(timeout=self._timeout, retry=None)
            count_reads(1)
            if not snapshot.exists:
                raise
            raise AnalysisExists(analysis_id, snapshot.to_dict() or {}) from None
        if queued is None:
            return None
        return dataclasses.replace(queued, written_at=commit_time)

    async def rerun(
        self,
        analysis_id: str,
        *,
        requested_by: str,
        admin: bool,
        active_cap: int | None = None,
        receipt: Receipt | None = None,
    ) -> QueuedAnalysis | None:
        """One transaction: checks owner and status, then generation + 1, status queued,
        progress 0, error cleared, outbox marker set. Raises AnalysisNotFound /
        AnalysisBusy, and AtActiveCap when `active_cap` is given and the owner is at it.
        `receipt` as for create (None returned: it already held the answer). The
        generation check is what makes a retried rerun without a key harmless: the first
        one's commit leaves the analysis queued, so the retry answers AnalysisBusy.

        An admin may also rerun work that is queued or running (stuck work, typically):
        the same write as the sweeper's re-dispatch (Move.REDISPATCH), so the old run's
        message and worker belong to an older generation and every write they still try
        is refused (analyzer.job_store); the worker stops its child at its next
        lease renewal. Such a retry without a key queues yet another generation, which is
        as harmless (only the newest runs), so admins' tools should send a key anyway."""
        ref = self._ref(analysis_id)

        async def run(transaction: firestore.AsyncTransaction) -> QueuedAnalysis | None:
            # The caller's marker is read with the analysis: for a user it is the owner's.
            refs = [ref, self._marker(requested_by)]
            refs += [receipt.ref] if receipt is not None else []
            documents = await self._read_many(transaction, refs)
            if receipt is not None and receipt.found(documents[receipt.ref.path]):
                return None
            data = documents[ref.path]
            if data is None or (data.get(OWNER_FIELD) != requested_by and not admin):
                raise AnalysisNotFound(analysis_id)
            status = data.get(Fields.STATUS)
            generation = generation_of(data)
            move = Move.RERUN
            if not can_rerun(status):
                if not (admin and allows(Move.REDISPATCH, status)):
                    raise AnalysisBusy(analysis_id, str(status), generation)
                # An admin restarting stuck work: what the sweeper does, asked for now.
                move = Move.REDISPATCH
            owner = data.get(OWNER_FIELD)
            # A restart keeps the analysis in the active set: no new place is taken.
            if active_cap is not None and owner == requested_by and move is Move.RERUN:
                marker = documents[self._marker(requested_by).path]
                await self._check_cap(transaction, requested_by, marker, active_cap)
            changes = new_generation(generation + 1) | {
                Fields.ERROR: None,
                Fields.REQUESTED_BY: requested_by,
            }
            if receipt is not None:
                changes[Fields.IDEMPOTENCY_RECORDS] = with_record(data, receipt.ref.id)
            staged = stage_write(
                transaction, ref, move, changes, before=data, markers=self._markers
            )
            job = new_job(analysis_id, generation + 1, requested_by)
            queued = QueuedAnalysis(
                analysis_id, generation + 1, Status.QUEUED, data | staged.changes, job
            )
            if receipt is not None:
                transaction.set(receipt.ref, receipt.record(queued))
            return queued

        queued, commit_time = await self._transact(run)
        if queued is None:
            return None
        return dataclasses.replace(queued, written_at=commit_time)

    async def clear_publish_pending(
        self, analysis_id: str, generation: int, *, written: QueuedAnalysis | None = None
    ) -> bool:
        """Clears the outbox marker only while the document is still at `generation`: a
        newer rerun's marker belongs to a publish that has not been confirmed yet.

        With `written` (the create or rerun that set the marker, with its commit time) one
        write conditioned on the document being unchanged since then does it; if it has
        changed, a transaction checks the generation."""
        ref = self._ref(analysis_id)
        cleared = {Fields.PUBLISH_PENDING: False}
        if written is not None and written.written_at is not None:
            batch = self._db.batch()
            # The precondition makes `written.data` exactly the document's state.
            option = self._db.write_option(last_update_time=written.written_at)
            stage_write(
                batch,
                ref,
                Move.CLEAR_PUBLISH_PENDING,
                cleared,
                before=written.data,
                markers=self._markers,
                option=option,
            )
            try:
                await batch.commit(timeout=self._timeout, retry=None)
                return True
            except gexc.FailedPrecondition:
                pass  # e.g. a worker already moved it to running: check the generation

        async def run(transaction: firestore.AsyncTransaction) -> bool:
            data = await self._read(transaction, analysis_id)
            if not data or not data.get(Fields.PUBLISH_PENDING):
                return False
            if generation_of(data) != generation:
                return False
            stage_write(
                transaction,
                ref,
                Move.CLEAR_PUBLISH_PENDING,
                cleared,
                before=data,
                markers=self._markers,
            )
            return True

        done, _ = await self._transact(run)
        return done

    async def publish_and_clear(
        self,
        publisher: JobPublisher,
        queued: QueuedAnalysis,
        *,
        trace_id: str | None,
        publish_timeout: float,
    ) -> bool:
        """Publishes the job, then clears its marker. Returns whether the publish was
        confirmed; on any failure the marker stays and the reconciler retries later."""
        job = queued.job
        try:
            await asyncio.to_thread(
                publisher.publish, job, trace_id=trace_id, timeout=publish_timeout
            )
        except PublishFailed:
            return False
        await self.clear_publish_pending(job.analysis_id, job.generation, written=queued)
        return True

    async def find_pending_publishes(
        self, *, older_than: timedelta, limit: int
    ) -> list[PendingPublish]:
        """Analyses whose marker has been set for longer than `older_than`, oldest first.
        Needs the (publish_pending, updated_at) index in firestore.indexes.json."""
        cutoff = utc_now() - older_than
        query = (
            self._collection.where(filter=FieldFilter(Fields.PUBLISH_PENDING, "==", True))
            .where(filter=FieldFilter(Fields.UPDATED_AT, "<", cutoff))
            .order_by(Fields.UPDATED_AT)
            .select([Fields.GENERATION, OWNER_FIELD, Fields.REQUESTED_BY, Fields.UPDATED_AT])
            .limit(limit)
        )
        found: list[PendingPublish] = []
        snapshots = await query.get(timeout=self._timeout, retry=None)
        count_query(len(snapshots))
        for snapshot in snapshots:
            data = snapshot.to_dict() or {}
            requested_by = data.get(Fields.REQUESTED_BY) or data.get(OWNER_FIELD) or "reconciler"
            found.append(PendingPublish(snapshot.id, generation_of(data), str(requested_by)[:128]))
        return found
