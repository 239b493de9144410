"""The job message: one pydantic model shared by publisher (rerun-api) and subscriber
(analyzer). Body is JSON; attributes carry the schema version and a trace id; the
ordering key is the analysis id."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from flokraft_core.store.document import (
    ANALYSIS_ID_PATTERN,
    check_analysis_id,
    is_valid_document_id,
)

SCHEMA_VERSION: Final = "1"
ATTR_SCHEMA_VERSION: Final = "schema_version"
ATTR_TRACE_ID: Final = "trace_id"
# An analysis id as both APIs accept it: the pattern, then what Firestore still refuses.
AnalysisId = Annotated[str, Field(pattern=ANALYSIS_ID_PATTERN), AfterValidator(check_analysis_id)]


class JobMessage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    analysis_id: AnalysisId
    generation: int = Field(ge=1)
    requested_by: str = Field(min_length=1, max_length=128)
    requested_at: datetime

    def encode(self) -> bytes:
        return self.model_dump_json().encode("utf-8")

    def ordering_key(self) -> str:
        return self.analysis_id


class InvalidJobMessage(ValueError):
    """Raised for a message that cannot be a job; `analysis_id` is set when one could
    still be read, so the analysis can be marked failed."""

    def __init__(self, reason: str, analysis_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.analysis_id = analysis_id


def new_job(analysis_id: str, generation: int, requested_by: str) -> JobMessage:
    return JobMessage(
        analysis_id=analysis_id,
        generation=generation,
        requested_by=requested_by,
        requested_at=datetime.now(UTC),
    )


def job_attributes(trace_id: str | None = None) -> dict[str, str]:
    return {ATTR_SCHEMA_VERSION: SCHEMA_VERSION, ATTR_TRACE_ID: trace_id or uuid.uuid4().hex}


def decode_job(data: bytes, attributes: Mapping[str, str]) -> JobMessage:
    version = attributes.get(ATTR_SCHEMA_VERSION, SCHEMA_VERSION)
    analysis_id = _salvage_analysis_id(data)
    if version != SCHEMA_VERSION:
        raise InvalidJobMessage(f"unsupported schema_version {version!r}", analysis_id)
    try:
        return JobMessage.model_validate_json(data)
    except ValidationError as exc:
        raise InvalidJobMessage(
            f"invalid job message: {exc.errors()[0]['msg']}", analysis_id
        ) from exc


def _salvage_analysis_id(data: bytes) -> str | None:
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    value = body.get("analysis_id") if isinstance(body, dict) else None
    if (
        isinstance(value, str)
        and re.match(ANALYSIS_ID_PATTERN, value)
        and is_valid_document_id(value)
    ):
        return value
    return None
