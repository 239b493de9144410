"""How an analysis ends on the command side: cancel, an admin's fail, delete, and the
stale-work sweep.

Beside `rerun_api.commands` (create, rerun, the outbox marker) and on the same AsyncClient:
each command is one transaction that reads the document, decides, and stages its write
through flokraft_core.store.write_path.stage_write, so the status table decides what is
allowed and the owner's change marker moves with every list-visible change.

- `cancel`: queued or running -> cancelled. The analyzer's next progress write (its lease
  renewal, every PROGRESS_INTERVAL_SECONDS) finds the document no longer running and
  stops the child; its result, failure or retry is refused by the same checks.
- `fail` (admins, for stuck work): queued or running -> failed with the admin's reason,
  the same move as the sweep's abandon; the worker stops the same way.
- `delete`: the document goes, in the same transaction that bumps the marker. A running
  job's writes all read the document first and update it (never set), so none of them
  can bring it back. The outbox marker goes with the document, and the Idempotency-Key
  records it names become tombstones in the same transaction.
- The sweep: work nobody is doing (`running` whose last write, the lease renewal, is long
  past; `queued` with no publish pending and no write for longer) is re-dispatched as a
  new generation, so any message or worker of the lost run is refused as stale, and
  after `max_redispatches` it is abandoned as `failed` with a reason the user can read.

Every call is bounded by `rpc_timeout` like `rerun_api.commands`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final, Protocol

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from flokraft_core.messaging.job_message import new_job
from flokraft_core.store.document import (
    OWNER_FIELD,
    Fields,
    Status,
    as_utc,
    generation_of,
    utc_now,
)
from flokraft_core.store.read_costs import count_query
from flokraft_core.store.status_table import TABLE, Move, allows, parse_status
from flokraft_core.store.write_path import stage_write
from rerun_api.commands import AnalysisNotFound, AnalysisStore, QueuedAnalysis, new_generation

# Who asked for a re-dispatch, in the job message and the document's `requested_by`.
SWEEPER: Final = "sweeper"


class AnalysisFinished(RuntimeError):
    """The analysis is not queued or running: there is nothing to cancel or fail."""

    def __init__(self, analysis_id: str, status: str | None, generation: int) -> None:
        super().__init__(f"analysis {analysis_id} is {status}")
        self.analysis_id = analysis_id
        self.status = status
        self.generation = generation


@dataclass(frozen=True)
class Stopped:
    """A cancel's or an admin fail's outcome."""

    analysis_id: str
    generation: int
    status: Status
    # False when it already was in `status` (nothing was written).
    changed: bool
    # When it was stopped (the document's `updated_at`).
    at: datetime
    error: str | None


class Tombstones(Protocol):
    """rerun-api's idempotency records: `bury` stages, on the delete's transaction, the
    tombstones of the records that describe the deleted analysis."""

    def bury(self, writer: firestore.AsyncTransaction, record_ids: list[str]) -> None: ...


class SweepOutcome(StrEnum):
    """What the sweep did to one document (also the label of its metric)."""

    REDISPATCHED = "redispatched"
    ABANDONED = "abandoned"
    # Someone (a worker, a rerun, a cancel, another replica) moved it first.
    SKIPPED = "skipped"


@dataclass(frozen=True)
class StaleWork:
    analysis_id: str
    status: Status


@dataclass(frozen=True)
class SweepResult:
    outcome: SweepOutcome
    # Set when re-dispatched: the job to publish (its marker is already set).
    queued: QueuedAnalysis | None = None


def cancel_reason(*, admin: bool, owner: bool) -> str:
    return "cancelled by its owner" if owner or not admin else "cancelled by an administrator"


def abandon_reason(status: Status, redispatches: int) -> str:
    """The sentence the user reads on a swept analysis."""
    what = "stopped running" if status is Status.RUNNING else "was never picked up"
    tries = "once" if redispatches == 1 else f"{redispatches} times"
    if redispatches == 0:
        return f"the analysis {what} and was given up; rerun it to try again"
    return (
        f"the analysis {what} and was given up after it was sent again {tries}; "
        "rerun it to try again"
    )


class AnalysisLifecycle(AnalysisStore):
    """rerun-api's cancel, admin fail, delete and sweep; one per process, built at
    start-up."""

    # --- cancel, fail and delete ------------------------------------------------------

    async def _stop(
        self,
        analysis_id: str,
        move: Move,
        *,
        reason: Callable[[dict[str, Any]], str],
        uid: str,
        admin: bool,
    ) -> Stopped:
        """queued | running -> `move`'s target (cancelled, or failed for ABANDON), with
        `reason(document)` as the error the user reads. Raises AnalysisNotFound (missing
        or someone else's) and AnalysisFinished (any other status). One already in the
        target status is answered as it is, without a write."""
        ref = self._ref(analysis_id)
        target = TABLE[move].target

        async def run(transaction: firestore.AsyncTransaction) -> Stopped:
            data = await self._read(transaction, analysis_id)
            if data is None or (data.get(OWNER_FIELD) != uid and not admin):
                raise AnalysisNotFound(analysis_id)
            status = parse_status(data.get(Fields.STATUS))
            generation = generation_of(data)
            if status is not None and status is target:
                at = as_utc(data.get(Fields.UPDATED_AT)) or utc_now()
                error = data.get(Fields.ERROR)
                return Stopped(analysis_id, generation, status, False, at, str(error or "") or None)
            if not allows(move, status):
                raise AnalysisFinished(analysis_id, data.get(Fields.STATUS), generation)
            error = reason(data)
            staged = stage_write(
                transaction, ref, move, _ended(error), before=data, markers=self._markers
            )
            at = staged.changes[Fields.UPDATED_AT]
            return Stopped(
                analysis_id, generation, Status(staged.changes[Fields.STATUS]), True, at, error
            )

        stopped, _ = await self._transact(run)
        return stopped

    async def cancel(self, analysis_id: str, *, uid: str, admin: bool) -> Stopped:
        """queued | running -> cancelled, by its owner or an admin. The analyzer's next
        lease renewal finds it no longer running and stops the child."""

        def reason(data: dict[str, Any]) -> str:
            return cancel_reason(admin=admin, owner=data.get(OWNER_FIELD) == uid)

        return await self._stop(analysis_id, Move.CANCEL, reason=reason, uid=uid, admin=admin)

    async def fail(self, analysis_id: str, *, reason: str, admin_uid: str) -> Stopped:
        """An admin ends stuck work: queued | running -> failed with `reason` (what the
        owner reads). The same move as the sweeper's abandon; the worker, if any, stops
        at its next lease renewal and its writes are refused."""
        return await self._stop(
            analysis_id, Move.ABANDON, reason=lambda _: reason, uid=admin_uid, admin=True
        )

    async def delete(
        self,
        analysis_id: str,
        *,
        uid: str,
        admin: bool,
        records: Tombstones | None = None,
    ) -> None:
        """Deletes the analysis document, whatever its status. Raises AnalysisNotFound
        when there is none or it is someone else's (told apart by nobody: a repeated
        delete and a foreign id look the same, so existence does not leak).

        The outbox marker lives on the document and goes with it. With `records`, the
        Idempotency-Key records the document names (`idempotency_records`) are replaced
        by tombstones in the same transaction: a retry of its create (or of a keyed
        rerun) can neither replay the deleted analysis nor create it again."""
        ref = self._ref(analysis_id)

        async def run(transaction: firestore.AsyncTransaction) -> None:
            data = await self._read(transaction, analysis_id)
            if data is None or (data.get(OWNER_FIELD) != uid and not admin):
                raise AnalysisNotFound(analysis_id)
            stage_write(transaction, ref, Move.DELETE, {}, before=data, markers=self._markers)
            named = data.get(Fields.IDEMPOTENCY_RECORDS)
            if records is not None and isinstance(named, list) and named:
                records.bury(transaction, [r for r in named if isinstance(r, str)])

        await self._transact(run)

    # --- the stale-work sweep ---------------------------------------------------------

    async def find_stale(
        self, status: Status, *, idle_for: timedelta, limit: int
    ) -> list[StaleWork]:
        """Documents in `status` whose last write (`updated_at`) is older than `idle_for`,
        oldest first; plus, when that leaves room, documents in `status` that have no
        `updated_at` at all but were created (`timestamp`) before the same cutoff: the
        old backend's rows, which it left queued or running when it was killed.
        Needs the (status, updated_at) and (status, timestamp) indexes."""
        cutoff = utc_now() - idle_for
        found: dict[str, StaleWork] = {}
        for field in (Fields.UPDATED_AT, Fields.TIMESTAMP):
            room = limit - len(found)
            if room <= 0:
                break
            query = (
                self._collection.where(filter=FieldFilter(Fields.STATUS, "==", status.value))
                .where(filter=FieldFilter(field, "<", cutoff))
                .order_by(field)
                .select([Fields.UPDATED_AT])
                .limit(room)
            )
            snapshots = await query.get(timeout=self._timeout, retry=None)
            count_query(len(snapshots))
            for snapshot in snapshots:
                data = snapshot.to_dict() or {}
                # The timestamp query also returns rows the first one judged (or skipped
                # as fresh): only those without any `updated_at` are the old backend's.
                if field == Fields.TIMESTAMP and Fields.UPDATED_AT in data:
                    continue
                found.setdefault(snapshot.id, StaleWork(snapshot.id, status))
        return list(found.values())

    async def sweep_one(
        self,
        item: StaleWork,
        *,
        idle_for: timedelta,
        max_redispatches: int,
    ) -> SweepResult:
        """Re-checks `item` in a transaction and re-dispatches or abandons it."""
        ref = self._ref(item.analysis_id)

        async def run(transaction: firestore.AsyncTransaction) -> SweepResult:
            data = await self._read(transaction, item.analysis_id)
            if data is None or not _still_stale(data, item.status, idle_for):
                return SweepResult(SweepOutcome.SKIPPED)
            redispatches = _count(data.get(Fields.REDISPATCHES))
            if redispatches >= max_redispatches:
                changes: dict[str, Any] = _ended(abandon_reason(item.status, redispatches))
                stage_write(
                    transaction, ref, Move.ABANDON, changes, before=data, markers=self._markers
                )
                return SweepResult(SweepOutcome.ABANDONED)
            generation = generation_of(data) + 1
            requested_by = str(data.get(Fields.REQUESTED_BY) or data.get(OWNER_FIELD) or SWEEPER)
            # A new generation: the lost run's message and worker are stale from now on.
            changes = new_generation(generation) | {Fields.REDISPATCHES: redispatches + 1}
            staged = stage_write(
                transaction, ref, Move.REDISPATCH, changes, before=data, markers=self._markers
            )
            job = new_job(item.analysis_id, generation, requested_by[:128])
            queued = QueuedAnalysis(
                item.analysis_id, generation, Status.QUEUED, data | staged.changes, job
            )
            return SweepResult(SweepOutcome.REDISPATCHED, queued)

        result, commit_time = await self._transact(run)
        if result.queued is not None and commit_time is not None:
            # Lets the publisher clear the marker with one preconditioned write.
            result = SweepResult(
                result.outcome, dataclasses.replace(result.queued, written_at=commit_time)
            )
        return result


def _ended(reason: str) -> dict[str, Any]:
    """The changes of every move that ends active work from outside the worker (cancel,
    an admin's fail, the sweeper's abandon): the reason, no lease, nothing to publish (a
    message the outbox would still send is ignored: the generation has ended)."""
    return {
        Fields.ERROR: reason,
        Fields.LEASE_OWNER: None,
        Fields.LEASE_UNTIL: None,
        Fields.PUBLISH_PENDING: False,
    }


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _still_stale(data: dict[str, Any], status: Status, idle_for: timedelta) -> bool:
    """What the query saw still holds: same status, no write since the cutoff, no live
    lease, and (queued) no publish waiting for the outbox."""
    if parse_status(data.get(Fields.STATUS)) is not status:
        return False
    now = utc_now()
    cutoff = now - idle_for
    last_write = as_utc(data.get(Fields.UPDATED_AT))
    if last_write is not None and last_write >= cutoff:
        return False
    lease_until = as_utc(data.get(Fields.LEASE_UNTIL))
    if lease_until is not None and lease_until > now:
        return False
    return not (status is Status.QUEUED and data.get(Fields.PUBLISH_PENDING))
