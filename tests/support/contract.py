"""The fields the existing frontend reads, written out as the contract (not imported from
the code under test, so a change to the code cannot quietly change what is checked)."""

from __future__ import annotations

from typing import Final

# One row of GET /analyses, and the body of a created analysis: the old Flask backend's
# eight fields.
LIST_FIELDS: Final = frozenset(
    {
        "id",
        "timestamp",
        "dance_type",
        "dancers",
        "analysis_type",
        "processed",
        "status",
        "total_score",
    }
)
# GET /analyses/{id} adds the report and the job's progress.
DETAIL_FIELDS: Final = LIST_FIELDS | {"text", "progress", "error"}
