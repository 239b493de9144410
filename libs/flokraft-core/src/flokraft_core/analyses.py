"""The analysis document, its list projection and tolerant conversion from Firestore.

Documents written by the old Flask backend lack most bookkeeping fields (generation,
progress, ...) and may hold `timestamp` as a Firestore timestamp or an ISO string; every
conversion here accepts them.
"""

from __future__ import annotations

import math
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


# What the frontend's list shows, and nothing more: the projection on the list path.
LIST_FIELDS: Final[tuple[str, ...]] = (
    "timestamp",
    "dance_type",
    "dancers",
    "analysis_type",
    "processed",
    "status",
    "total_score",
)
# The detail view adds these; `video_url` is never returned by any API.
DETAIL_EXTRA_FIELDS: Final[tuple[str, ...]] = ("text", "progress", "error")
# Needed to decide ownership without reading the large fields.
OWNER_FIELD: Final = "user_id"


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


def _as_datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
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
        "timestamp": _as_datetime(data.get("timestamp")),
        "dance_type": _as_str(data.get("dance_type")),
        "dancers": _as_dancers(data.get("dancers")),
        "analysis_type": _as_str(data.get("analysis_type")),
        "processed": bool(data.get("processed", False)),
        "status": _as_str(data.get("status")),
        "total_score": _as_float(data.get("total_score")),
    }


def list_item_from_document(doc_id: str, data: dict[str, Any]) -> AnalysisListItem:
    return AnalysisListItem(**_list_fields(doc_id, data))


def detail_from_document(doc_id: str, data: dict[str, Any]) -> AnalysisDetail:
    progress = _as_float(data.get("progress"))
    return AnalysisDetail(
        **_list_fields(doc_id, data),
        text=_as_str(data.get("text")),
        progress=None if progress is None else min(max(progress, 0.0), 1.0),
        error=_as_str(data.get("error")),
    )
