"""The analysis document: its field names, ids, list projection, generation and time
helpers, and tolerant conversion from Firestore.

Documents written by the old Flask backend lack most bookkeeping fields (generation,
progress, ...) and may hold `timestamp` as a Firestore timestamp or an ISO string; every
conversion here accepts them. Writes go through flokraft_core.store.write_path.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field


class AnalysisType(StrEnum):
    COUPLE = "couple"
    SOLO = "solo"


class Status(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    # Stopped by its owner or an admin (POST /analyses/{id}/cancel); terminal.
    CANCELLED = "cancelled"


# Needed to decide ownership without reading the large fields.
OWNER_FIELD: Final = "user_id"


class Fields:
    """Every field name of an analysis document (the owner is OWNER_FIELD)."""

    REQUESTED_BY: Final = "requested_by"
    TIMESTAMP: Final = "timestamp"  # what the list sorts by; the old backend's field
    CREATED_AT: Final = "created_at"
    UPDATED_AT: Final = "updated_at"
    VIDEO_URL: Final = "video_url"
    DANCE_TYPE: Final = "dance_type"
    DANCERS: Final = "dancers"
    ANALYSIS_TYPE: Final = "analysis_type"
    STATUS: Final = "status"
    PROCESSED: Final = "processed"
    TOTAL_SCORE: Final = "total_score"
    TEXT: Final = "text"
    METRICS: Final = "metrics"
    PROGRESS: Final = "progress"
    ERROR: Final = "error"
    # Bookkeeping of runs: which run is current, how often it was tried, who holds it.
    GENERATION: Final = "generation"
    ATTEMPTS: Final = "attempts"
    LEASE_OWNER: Final = "lease_owner"
    LEASE_UNTIL: Final = "lease_until"
    COMPLETED_GENERATION: Final = "completed_generation"
    COMPLETIONS: Final = "completions"
    # The outbox marker: a job message for the current generation may still be unsent.
    PUBLISH_PENDING: Final = "publish_pending"
    # How often the stale-work sweeper re-dispatched the analysis (rerun-api's sweeper).
    REDISPATCHES: Final = "redispatches"
    # Ids of the Idempotency-Key records (rerun-api's) whose stored answers describe this
    # analysis: its delete turns them into tombstones, so no retry replays it.
    IDEMPOTENCY_RECORDS: Final = "idempotency_records"


# What the frontend's list shows, and nothing more: the projection on the list path.
LIST_FIELDS: Final[tuple[str, ...]] = (
    Fields.TIMESTAMP,
    Fields.DANCE_TYPE,
    Fields.DANCERS,
    Fields.ANALYSIS_TYPE,
    Fields.PROCESSED,
    Fields.STATUS,
    Fields.TOTAL_SCORE,
)
# The detail view adds these; `video_url` is never returned by any API.
DETAIL_EXTRA_FIELDS: Final[tuple[str, ...]] = (Fields.TEXT, Fields.PROGRESS, Fields.ERROR)

# The ids both APIs and the job message accept: Firestore auto-ids, the old backend's and
# our demo ids. A subset of what Firestore allows (no "/", at most 1,500 bytes); the ids
# inside it that Firestore refuses ("." and "..", reserved `__...__`) are refused by
# `is_valid_document_id`, which every route checks after this pattern.
ANALYSIS_ID_PATTERN: Final = r"^[A-Za-z0-9._-]{1,128}$"
_RESERVED_ID = re.compile(r"^__.*__$")
_MAX_ID_BYTES = 1500


def is_valid_document_id(doc_id: str) -> bool:
    """Whether Firestore accepts `doc_id` as a document id (asking for one it reserves is
    an InvalidArgument, not a miss)."""
    return (
        bool(doc_id)
        and "/" not in doc_id
        and doc_id not in {".", ".."}
        and not _RESERVED_ID.match(doc_id)
        and len(doc_id.encode()) <= _MAX_ID_BYTES
    )


def check_analysis_id(value: str) -> str:
    """A pydantic after-validator: the pattern's ids that Firestore still refuses."""
    if not is_valid_document_id(value):
        raise ValueError('Firestore reserves this id (".", ".." or __name__)')
    return value


def utc_now() -> datetime:
    return datetime.now(UTC)


def generation_of(data: dict[str, Any]) -> int:
    """Which run of the analysis is current. Documents from the old backend have none, and
    a value below 1 is no run we ever wrote: both count as the first."""
    value = data.get(Fields.GENERATION)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    return 1


class AnalysisListItem(BaseModel):
    """One row of `GET /analyses`: exactly the fields the existing frontend reads."""

    model_config = ConfigDict(frozen=True)

    id: str
    timestamp: datetime | None = None
    dance_type: str | None = None
    dancers: list[str] | str | None = None
    analysis_type: str | None = None
    processed: bool = False
    status: str | None = None
    total_score: float | None = None


class AnalysisDetail(AnalysisListItem):
    """`GET /analyses/{id}`: the list fields plus the report and job progress."""

    text: str | None = None
    progress: float | None = Field(None, ge=0, le=1)
    error: str | None = None


def as_utc(value: Any) -> datetime | None:
    """A Firestore timestamp as an aware datetime; anything else is None."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return None


def _as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        # Some old documents stored epoch seconds or milliseconds.
        seconds = value / 1000 if value > 1e11 else value
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (ValueError, OverflowError, OSError):
            return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _as_float(value: Any) -> float | None:
    # NaN and infinities are not JSON: they would turn a list response into a 500.
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | str):
        try:
            number = float(value)
        except (ValueError, OverflowError):
            return None
        return number if math.isfinite(number) else None
    return None


def _as_dancers(value: Any) -> list[str] | str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return str(value)


def _as_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _list_fields(doc_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """Only the list fields are copied, whatever else the document (or an emulator that
    ignores projections) hands us."""
    return {
        "id": doc_id,
        "timestamp": _as_datetime(data.get(Fields.TIMESTAMP)),
        "dance_type": _as_str(data.get(Fields.DANCE_TYPE)),
        "dancers": _as_dancers(data.get(Fields.DANCERS)),
        "analysis_type": _as_str(data.get(Fields.ANALYSIS_TYPE)),
        "processed": bool(data.get(Fields.PROCESSED, False)),
        "status": _as_str(data.get(Fields.STATUS)),
        "total_score": _as_float(data.get(Fields.TOTAL_SCORE)),
    }


def list_item_from_document(doc_id: str, data: dict[str, Any]) -> AnalysisListItem:
    return AnalysisListItem(**_list_fields(doc_id, data))


def detail_from_document(doc_id: str, data: dict[str, Any]) -> AnalysisDetail:
    progress = _as_float(data.get(Fields.PROGRESS))
    return AnalysisDetail(
        **_list_fields(doc_id, data),
        text=_as_str(data.get(Fields.TEXT)),
        progress=None if progress is None else min(max(progress, 0.0), 1.0),
        error=_as_str(data.get(Fields.ERROR)),
    )
