"""A per-user cap on analyses that are queued or running (MAX_ACTIVE_ANALYSES_PER_USER).

The rate limit bounds requests per minute; this bounds the work one user can have waiting
for the analyzers at once, so one account cannot fill the queue for everyone.

The cap holds under concurrency: it is checked inside the create or rerun transaction
against the user's active set, the ids of their queued or running analyses kept on their
change marker by the one write path (flokraft_core.store.change_markers,
flokraft_core.store.write_path). Every create of one user reads that one document, so
concurrent creates are serialised on it and the cap is never overshot; every move out of
queued/running (done, failed, and whatever else leaves them) releases a place in the same
write. It costs the one document read, no count query. An admin acting on someone else's
analysis is not held to the owner's cap.
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
