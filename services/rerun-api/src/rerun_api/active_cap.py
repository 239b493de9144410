"""The HTTP answer to the per-user cap on queued or running analyses: 429
`too_many_active`, with Retry-After.

The rate limit bounds requests per minute; the cap (MAX_ACTIVE_ANALYSES_PER_USER) bounds
the work one user can have waiting for the analyzers at once. It runs no query of its
own: the cap is checked in one place, inside the create or rerun transaction
(rerun_api.commands, `AtActiveCap`), against the owner's active set on their change
marker (flokraft_core.store.change_markers), which the one write path keeps.
"""

from __future__ import annotations

from typing import Final

from flokraft_core.web.errors import ApiError
from rerun_api.commands import AtActiveCap

RETRY_AFTER_SECONDS: Final = 30


def too_many_active(exc: AtActiveCap) -> ApiError:
    return ApiError(
        429,
        "too_many_active",
        f"you have {exc.active} analyses queued or running (the limit is {exc.limit}); "
        "wait until one finishes",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
