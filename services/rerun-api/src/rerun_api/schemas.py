"""Request and response bodies of rerun-api (the OpenAPI schema is generated from these)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from flokraft_core.store.document import AnalysisListItem, AnalysisType, Status
from flokraft_core.video_urls import bound_problem

MAX_URL_LENGTH: Final = 2048
# RFC 3986 characters of an authority and a path; ASCII only, so no spaces or controls.
_AUTHORITY: Final = r"[A-Za-z0-9._~%!$&'()*+,;=:@-]+"
_PATH: Final = r"/[A-Za-z0-9._~%!$&'()*+,;=:@/-]+(?:[?#][!-~]*)?"
VIDEO_URL_PATTERN: Final = rf"^(?:gs|https)://{_AUTHORITY}{_PATH}$"
# Only when ALLOW_FILE_URLS is set (the local profile); not part of the public schema.
_FILE_URL = re.compile(rf"^file://(?:{_AUTHORITY})?{_PATH}$")
_VIDEO_URL = re.compile(VIDEO_URL_PATTERN)


# Unicode category Cc is exactly these 65 code points (C0, DEL, C1). NUL and friends have
# no place in a dance type or a name, and they break logs, CSV exports and terminals.
_CONTROL_CHARACTERS: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
NO_CONTROL_CHARACTERS_PATTERN: Final = r"^[^\x00-\x1f\x7f-\x9f]*$"


def _plain_text(value: str) -> str:
    if _CONTROL_CHARACTERS.search(value):
        raise ValueError("must not contain control characters")
    stripped = value.strip()
    if not stripped:
        raise ValueError("must not be blank")
    return stripped


# The length is checked on what was sent, as the OpenAPI schema says (maxLength 100), and
# only then stripped: stripping first accepted a 101-character value whose first
# character is whitespace, which the schema promises to refuse.
ShortText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100),
    AfterValidator(_plain_text),
    Field(json_schema_extra={"pattern": NO_CONTROL_CHARACTERS_PATTERN}),
]
DancerName = ShortText
DancerList = Annotated[list[DancerName], Field(min_length=1, max_length=10)]


def url_problem(value: str) -> str | None:
    """Why `value` cannot be a video URL, or None. file:// URLs pass here; whether this
    deployment accepts them is the router's call (ALLOW_FILE_URLS)."""
    if _VIDEO_URL.fullmatch(value) or _FILE_URL.fullmatch(value):
        return None
    return (
        "must be a gs:// or https:// URL with a bucket or host and an object path "
        "(ASCII, no spaces)"
    )


def is_file_url(value: str) -> bool:
    return value.startswith("file://")


class CreateAnalysisRequest(BaseModel):
    """What the frontend sends to start an analysis; the owner comes from the token."""

    # Unknown fields (e.g. a `user_id` an old frontend still sends) are ignored, never used.
    model_config = ConfigDict(extra="ignore")

    video_url: str = Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="Address of one of the caller's own uploads: by default "
        "gs://<VIDEO_BUCKET>/<caller's uid>/<object> (VIDEO_URL_PREFIXES); file:// only in "
        "the local profile.",
        json_schema_extra={"pattern": VIDEO_URL_PATTERN},
        examples=["gs://flokraft-videos/u1/clip.mp4"],
    )
    dance_type: ShortText = Field(examples=["salsa"])
    dancers: DancerList | DancerName = Field(
        description="Names of the dancers (1 to 10), or one free-text description.",
        examples=[["lead", "follow"]],
    )
    analysis_type: AnalysisType

    @field_validator("video_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        # Syntax first, then whether the caller (bound by
        # rerun_api.dependencies.video_owner) may have this address fetched: their own
        # uploads only.
        problem = url_problem(value) or bound_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class AnalysisCreated(AnalysisListItem):
    """The new analysis, as the list shows it."""


class RerunAccepted(BaseModel):
    id: str
    status: Status
    generation: int = Field(ge=1)
    published: bool = Field(
        description="Whether Pub/Sub confirmed the job at once; if not, the outbox sends it."
    )
    queued_at: datetime


class CancelAccepted(BaseModel):
    id: str
    status: Status = Field(description="Always `cancelled`.")
    generation: int = Field(ge=1, description="The run that was cancelled.")
    cancelled_at: datetime


class FailRequest(BaseModel):
    """An admin's reason for ending stuck work; the owner reads it as the error."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        min_length=1,
        max_length=500,
        description="What the owner reads on the failed analysis.",
        examples=["the video could not be fetched; upload it again and rerun"],
    )


class FailAccepted(BaseModel):
    id: str
    status: Status = Field(description="Always `failed`.")
    generation: int = Field(ge=1, description="The run that was ended.")
    failed_at: datetime
    error: str | None = Field(description="The reason the owner reads.")
