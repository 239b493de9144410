"""Path and query parameters both APIs share, so they accept and refuse the same values."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import AfterValidator

from flokraft_core.store.document import ANALYSIS_ID_PATTERN, check_analysis_id

# An analysis id in a path: the pattern (documented in OpenAPI), then the ids inside it
# that Firestore refuses. Both answer 422 naming `analysis_id`.
AnalysisIdPath = Annotated[
    str,
    Path(pattern=ANALYSIS_ID_PATTERN, max_length=128),
    AfterValidator(check_analysis_id),
]
