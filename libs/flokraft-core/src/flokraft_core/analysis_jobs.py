"""The analyzer's Firestore access (sync client): load, claim, progress, complete, fail.

Every state change is a transaction that re-reads the document and checks the job's
generation, so a message for an older generation (a rerun happened meanwhile) and a
duplicate delivery can never overwrite newer state, and a result is written exactly once
per generation (`completions` counts the done transitions; `completed_generation` names
the generation they belong to).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from google.api_core.retry import Retry
from google.cloud import firestore
from google.cloud.firestore_v1.transaction import Transaction

from flokraft_core.analyses import Status
from flokraft_core.status import parse_status


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"
    NOT_FOUND = "not_found"
    STALE = "stale"  # the message's generation is not the document's current one
    FINISHED = "finished"  # this generation already ended (done or failed)
    LEASED = "leased"  # another live worker holds the job


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    attempts: int = 0
    data: dict[str, Any] | None = None
    lease_until: datetime | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _generation(data: dict[str, Any]) -> int:
    # Documents from the old backend have no generation: they are generation 1.
    value = data.get("generation", 1)
    return value if isinstance(value, int) and not isinstance(value, bool) else 1


def _as_utc(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


class AnalysisJobStore:
    """One per worker process; `owner` identifies the worker in `lease_owner`."""

    def __init__(
        self,
        db: firestore.Client,
        collection: str,
        *,
        owner: str,
        timeout: float,
        lease_seconds: float,
    ) -> None:
        self._db = db
        self._collection = db.collection(collection)
        self.owner = owner
        self._timeout = timeout
        # Bounded: a Firestore outage must surface as an error within the budget, so the
        # message is nacked and redelivered instead of the worker hanging.
        self._retry = Retry(initial=0.2, maximum=2.0, timeout=timeout)
        self._lease = timedelta(seconds=lease_seconds)

    def _ref(self, analysis_id: str) -> firestore.DocumentReference:
        return self._collection.document(analysis_id)

    def _read(self, transaction: Transaction, analysis_id: str) -> dict[str, Any] | None:
        snapshot = self._ref(analysis_id).get(transaction=transaction, timeout=self._timeout)
        return snapshot.to_dict() if snapshot.exists else None

    def load(self, analysis_id: str) -> dict[str, Any] | None:
        snapshot = self._ref(analysis_id).get(timeout=self._timeout, retry=self._retry)
        return snapshot.to_dict() if snapshot.exists else None

    def claim(self, analysis_id: str, generation: int) -> Claim:
        """queued (or running with an expired lease: its worker died) -> running."""

        @firestore.transactional
        def run(transaction: Transaction) -> Claim:
            data = self._read(transaction, analysis_id)
            if data is None:
                return Claim(ClaimOutcome.NOT_FOUND)
            if _generation(data) != generation:
                return Claim(ClaimOutcome.STALE, data=data)
            status = parse_status(data.get("status"))
            if status in (Status.DONE, Status.FAILED):
                return Claim(ClaimOutcome.FINISHED, data=data)
            now = _now()
            lease_until = _as_utc(data.get("lease_until"))
            owner = data.get("lease_owner")
            if (
                status is Status.RUNNING
                and owner not in (None, self.owner)
                and lease_until is not None
                and lease_until > now
            ):
                return Claim(ClaimOutcome.LEASED, data=data, lease_until=lease_until)
            attempts = int(data.get("attempts") or 0) + 1
            transaction.update(
                self._ref(analysis_id),
                {
                    "status": Status.RUNNING.value,
                    "lease_owner": self.owner,
                    "lease_until": now + self._lease,
                    "attempts": attempts,
                    "progress": 0.0,
                    "updated_at": now,
                },
            )
            return Claim(ClaimOutcome.CLAIMED, attempts=attempts, data=data)

        result: Claim = run(self._db.transaction())
        return result

    def write_progress(self, analysis_id: str, generation: int, progress: float) -> bool:
        """Also renews the lease. False when the job is no longer ours (rerun, taken over)."""

        @firestore.transactional
        def run(transaction: Transaction) -> bool:
            data = self._read(transaction, analysis_id)
            if not self._holds(data, generation):
                return False
            now = _now()
            transaction.update(
                self._ref(analysis_id),
                {
                    "progress": min(max(progress, 0.0), 1.0),
                    "lease_until": now + self._lease,
                    "updated_at": now,
                },
            )
            return True

        result: bool = run(self._db.transaction())
        return result

    def _holds(self, data: dict[str, Any] | None, generation: int) -> bool:
        return (
            data is not None
            and _generation(data) == generation
            and parse_status(data.get("status")) is Status.RUNNING
            and data.get("lease_owner") == self.owner
        )

    def complete(
        self, analysis_id: str, generation: int, *, metrics: dict[str, Any], text: str
    ) -> bool:
        """running -> done, once per generation. False if the generation is no longer
        current or already done (a duplicate delivery that also ran)."""

        @firestore.transactional
        def run(transaction: Transaction) -> bool:
            data = self._read(transaction, analysis_id)
            if data is None or _generation(data) != generation:
                return False
            if parse_status(data.get("status")) in (Status.DONE, Status.FAILED):
                return False
            now = _now()
            transaction.update(
                self._ref(analysis_id),
                {
                    "status": Status.DONE.value,
                    "processed": True,
                    "total_score": metrics.get("total_score"),
                    "text": text,
                    "metrics": metrics,
                    "progress": 1.0,
                    "error": None,
                    "lease_owner": None,
                    "lease_until": None,
                    "completed_generation": generation,
                    "completions": int(data.get("completions") or 0) + 1,
                    "updated_at": now,
                },
            )
            return True

        result: bool = run(self._db.transaction())
        return result

    def record_failed_attempt(self, analysis_id: str, generation: int, error: str) -> bool:
        """running -> queued with the attempt's error; the message is nacked for a retry."""

        @firestore.transactional
        def run(transaction: Transaction) -> bool:
            data = self._read(transaction, analysis_id)
            if data is None or _generation(data) != generation:
                return False
            if parse_status(data.get("status")) is not Status.RUNNING:
                return False
            transaction.update(
                self._ref(analysis_id),
                {
                    "status": Status.QUEUED.value,
                    "error": error,
                    "lease_owner": None,
                    "lease_until": None,
                    "updated_at": _now(),
                },
            )
            return True

        result: bool = run(self._db.transaction())
        return result

    def mark_failed(self, analysis_id: str, generation: int | None, reason: str) -> bool:
        """-> failed. `generation=None` (a message too broken to name one) fails whatever
        generation is current. A done analysis is never turned into a failed one."""

        @firestore.transactional
        def run(transaction: Transaction) -> bool:
            data = self._read(transaction, analysis_id)
            if data is None:
                return False
            if generation is not None and _generation(data) != generation:
                return False
            if parse_status(data.get("status")) in (Status.DONE, Status.FAILED):
                return False
            transaction.update(
                self._ref(analysis_id),
                {
                    "status": Status.FAILED.value,
                    "processed": False,
                    "error": reason,
                    "lease_owner": None,
                    "lease_until": None,
                    "updated_at": _now(),
                },
            )
            return True

        result: bool = run(self._db.transaction())
        return result
