"""Path, query and header parameters both APIs share, so they accept and refuse the same
values and document them alike."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import AfterValidator, WithJsonSchema

from flokraft_core.store.document import ANALYSIS_ID_PATTERN, check_analysis_id

# An analysis id in a path: the pattern (documented in OpenAPI), then the ids inside it
# that Firestore refuses. Both answer 422 naming `analysis_id`.
AnalysisIdPath = Annotated[
    str,
    Path(pattern=ANALYSIS_ID_PATTERN, max_length=128),
    AfterValidator(check_analysis_id),
]


def optional_header(**schema: Any) -> WithJsonSchema:
    """The OpenAPI schema of an optional header (`str | None = None`): a string with
    these constraints. FastAPI would document `anyOf: [string, null]`, but a header is
    either absent or a string, never JSON null: clients and fuzzers reading the null
    branch send the text `null`. Validation is unchanged (the Header's own constraints)."""
    return WithJsonSchema({"type": "string", **schema})
