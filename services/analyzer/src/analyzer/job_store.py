"""The analyzer's Firestore access (sync client): load, claim, progress, complete, fail.

Every state change is one transaction that re-reads the document, decides from what it
read, and stages its write through flokraft_core.store.write_path.stage_write (which
checks the move against the status table). Each decision checks the job's generation, so
a message for an older generation (a rerun happened meanwhile) and a duplicate delivery
can never overwrite newer state, and a result is written exactly once per generation
(`completions` counts the done transitions; `completed_generation` names the generation
they belong to).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, TypeVar

from google.api_core.retry import Retry
from google.cloud import firestore
from google.cloud.firestore_v1.transaction import Transaction

from flokraft_core.store.document import Fields, Status, as_utc, generation_of, utc_now
from flokraft_core.store.read_costs import count_reads
from flokraft_core.store.status_table import Move, allows, parse_status
from flokraft_core.store.write_path import stage_write

T = TypeVar("T")


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"
    NOT_FOUND = "not_found"
    STALE = "stale"  # the message's generation is not the document's current one
    FINISHED = "finished"  # this generation already ended (done, failed or cancelled)
    LEASED = "leased"  # another live worker holds the job


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    attempts: int = 0
    data: dict[str, Any] | None = None
    lease_until: datetime | None = None


@dataclass(frozen=True)
class _Decision(Generic[T]):
    """What a transaction returns, and the write (if any) it stages first."""

    result: T
    move: Move | None = None
    changes: dict[str, Any] | None = None


def _current(data: dict[str, Any] | None, generation: int | None) -> bool:
    """The document exists and `generation` (None: any) is its current one."""
    return data is not None and (generation is None or generation_of(data) == generation)


class AnalysisJobStore:
    """One per worker process; `owner` identifies the worker in `lease_owner`."""

    def __init__(
        self,
        db: firestore.Client,
        collection: str,
        *,
        markers_collection: str,
        owner: str,
        timeout: float,
        lease_seconds: float,
    ) -> None:
        self._db = db
        self._collection = db.collection(collection)
        self._markers = db.collection(markers_collection)
        self.owner = owner
        self._timeout = timeout
        # Bounded: a Firestore outage must surface as an error within the budget, so the
        # message is nacked and redelivered instead of the worker hanging.
        self._retry = Retry(initial=0.2, maximum=2.0, timeout=timeout)
        self._lease = timedelta(seconds=lease_seconds)

    def _ref(self, analysis_id: str) -> firestore.DocumentReference:
        return self._collection.document(analysis_id)

    def load(self, analysis_id: str) -> dict[str, Any] | None:
        snapshot = self._ref(analysis_id).get(timeout=self._timeout, retry=self._retry)
        count_reads(1)
        return snapshot.to_dict() if snapshot.exists else None

    def _transact(
        self, analysis_id: str, decide: Callable[[dict[str, Any] | None], _Decision[T]]
    ) -> T:
        """Reads the document, lets `decide` choose, stages its write; one transaction."""
        ref = self._ref(analysis_id)

        @firestore.transactional
        def run(transaction: Transaction) -> T:
            snapshot = ref.get(transaction=transaction, timeout=self._timeout)
            count_reads(1)
            data = snapshot.to_dict() if snapshot.exists else None
            decision = decide(data)
            if decision.move is not None:
                stage_write(
                    transaction,
                    ref,
                    decision.move,
                    decision.changes or {},
                    before=data,
                    markers=self._markers,
                )
            return decision.result

        result: T = run(self._db.transaction())
        return result

    def claim(self, analysis_id: str, generation: int) -> Claim:
        """queued (or running with an expired lease: its worker died) -> running."""

        def decide(data: dict[str, Any] | None) -> _Decision[Claim]:
            if data is None:
                return _Decision(Claim(ClaimOutcome.NOT_FOUND))
            if generation_of(data) != generation:
                return _Decision(Claim(ClaimOutcome.STALE, data=data))
            status = parse_status(data.get(Fields.STATUS))
            if not (allows(Move.CLAIM, status) or allows(Move.RECLAIM, status)):
                # Done, failed or cancelled: this generation has ended.
                return _Decision(Claim(ClaimOutcome.FINISHED, data=data))
            now = utc_now()
            lease_until = as_utc(data.get(Fields.LEASE_UNTIL))
            owner = data.get(Fields.LEASE_OWNER)
            if (
                status is Status.RUNNING
                and owner not in (None, self.owner)
                and lease_until is not None
                and lease_until > now
            ):
                return _Decision(Claim(ClaimOutcome.LEASED, data=data, lease_until=lease_until))
            attempts = int(data.get(Fields.ATTEMPTS) or 0) + 1
            changes = {
                Fields.LEASE_OWNER: self.owner,
                Fields.LEASE_UNTIL: now + self._lease,
                Fields.ATTEMPTS: attempts,
                Fields.PROGRESS: 0.0,
                Fields.UPDATED_AT: now,
            }
            move = Move.RECLAIM if status is Status.RUNNING else Move.CLAIM
            return _Decision(
                Claim(ClaimOutcome.CLAIMED, attempts=attempts, data=data), move, changes
            )

        return self._transact(analysis_id, decide)

    def write_progress(self, analysis_id: str, generation: int, progress: float) -> bool:
        """Also renews the lease. False when the job is no longer ours (rerun, taken over,
        re-dispatched by the sweeper, cancelled or deleted): the worker then stops the
        child, and the checks in `complete` / `mark_failed` / `record_failed_attempt` keep
        the result, the failure and the retry from being written. None of them can bring
        a deleted document back: each reads it first, and an update of a missing document
        fails."""

        def decide(data: dict[str, Any] | None) -> _Decision[bool]:
            if not self._holds(data, generation):
                return _Decision(False)
            now = utc_now()
            changes = {
                Fields.PROGRESS: min(max(progress, 0.0), 1.0),
                Fields.LEASE_UNTIL: now + self._lease,
                Fields.UPDATED_AT: now,
            }
            return _Decision(True, Move.PROGRESS, changes)

        return self._transact(analysis_id, decide)

    def _holds(self, data: dict[str, Any] | None, generation: int) -> bool:
        return (
            data is not None
            and _current(data, generation)
            and parse_status(data.get(Fields.STATUS)) is Status.RUNNING
            and data.get(Fields.LEASE_OWNER) == self.owner
        )

    def complete(
        self, analysis_id: str, generation: int, *, metrics: dict[str, Any], text: str
    ) -> bool:
        """running -> done, once per generation (queued -> done when a duplicate delivery
        finishes after the job was given back). False if the generation is no longer
        current or already done (a duplicate delivery that also ran)."""

        def decide(data: dict[str, Any] | None) -> _Decision[bool]:
            if data is None or not _current(data, generation):
                return _Decision(False)
            status = data.get(Fields.STATUS)
            move = Move.COMPLETE if allows(Move.COMPLETE, status) else Move.COMPLETE_REQUEUED
            if not allows(move, status):
                return _Decision(False)
            changes = {
                Fields.PROCESSED: True,
                Fields.TOTAL_SCORE: metrics.get("total_score"),
                Fields.TEXT: text,
                Fields.METRICS: metrics,
                Fields.PROGRESS: 1.0,
                Fields.ERROR: None,
                Fields.LEASE_OWNER: None,
                Fields.LEASE_UNTIL: None,
                Fields.COMPLETED_GENERATION: generation,
                Fields.COMPLETIONS: int(data.get(Fields.COMPLETIONS) or 0) + 1,
            }
            return _Decision(True, move, changes)

        return self._transact(analysis_id, decide)

    def record_failed_attempt(self, analysis_id: str, generation: int, error: str) -> bool:
        """running -> queued with the attempt's error; the message is nacked for a retry."""

        def decide(data: dict[str, Any] | None) -> _Decision[bool]:
            if not _current(data, generation) or not allows(
                Move.REQUEUE, (data or {}).get(Fields.STATUS)
            ):
                return _Decision(False)
            changes = {Fields.ERROR: error, Fields.LEASE_OWNER: None, Fields.LEASE_UNTIL: None}
            return _Decision(True, Move.REQUEUE, changes)

        return self._transact(analysis_id, decide)

    def mark_failed(
        self, analysis_id: str, generation: int | None, reason: str, *, move: Move = Move.FAIL
    ) -> bool:
        """-> failed (`move` is FAIL, or GIVE_UP for a dead-lettered job). `generation=None`
        (a message too broken to name one) fails whatever generation is current. A done
        analysis is never turned into a failed one."""

        def decide(data: dict[str, Any] | None) -> _Decision[bool]:
            if not _current(data, generation) or not allows(move, (data or {}).get(Fields.STATUS)):
                return _Decision(False)
            changes = {
                Fields.PROCESSED: False,
                Fields.ERROR: reason,
                Fields.LEASE_OWNER: None,
                Fields.LEASE_UNTIL: None,
            }
            return _Decision(True, move, changes)

        return self._transact(analysis_id, decide)
