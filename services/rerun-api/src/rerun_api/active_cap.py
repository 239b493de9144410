"""A per-user cap on analyses that are queued or running.

The rate limit bounds requests per minute; this bounds the work one user can have waiting
for the analyzers at once, so one account cannot fill the queue for everyone. One count
aggregation (an index lookup, no documents read) per create or rerun. Check-then-write is
not atomic: two requests racing at the cap may both pass, which overshoots by at most the
number of concurrent requests and is fine for a fairness limit.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from flokraft_core.analyses import OWNER_FIELD, Fields, Status
from flokraft_core.read_costs import count_reads
from flokraft_core.web.errors import ApiError

ACTIVE_STATUSES = [Status.QUEUED.value, Status.RUNNING.value]
RETRY_AFTER_SECONDS = 30


async def active_count(
    db: firestore.AsyncClient, collection: str, uid: str, *, rpc_timeout: float
) -> int:
    query = (
        db.collection(collection)
        .where(filter=FieldFilter(OWNER_FIELD, "==", uid))
        .where(filter=FieldFilter(Fields.STATUS, "in", ACTIVE_STATUSES))
        .count()
    )
    # The stubs type the aggregation query's get() as unbound; the call is the documented one.
    # No retry: an outage answers 503 within the one timeout, like the write after it.
    results = await query.get(retry=None, timeout=rpc_timeout)  # type: ignore[call-arg]
    # Firestore bills a count as one read per 1,000 index entries (at least one).
    count_reads(1 + int(results[0][0].value) // 1000)
    return int(results[0][0].value)


async def ensure_below_active_cap(
    db: firestore.AsyncClient, collection: str, uid: str, *, cap: int, rpc_timeout: float
) -> None:
    """Raises 429 when `uid` already has `cap` analyses queued or running."""
    count = await active_count(db, collection, uid, rpc_timeout=rpc_timeout)
    if count >= cap:
        raise ApiError(
            429,
            "too_many_active",
            f"you have {count} analyses queued or running (the limit is {cap}); "
            "wait until one finishes",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


async def check_active_cap(request: Request, uid: str) -> None:
    """The cap and the database from the app."""
    settings = request.app.state.settings
    await ensure_below_active_cap(
        request.app.state.db,
        settings.firestore_collection,
        uid,
        cap=settings.max_active_analyses_per_user,
        rpc_timeout=settings.firestore_timeout_seconds,
    )


def active_cap(request: Request) -> Callable[[str], Awaitable[None]]:
    return functools.partial(check_active_cap, request)


# `await cap(uid)` in a route raises 429 when the user is at the cap.
ActiveCap = Annotated[Callable[[str], Awaitable[None]], Depends(active_cap)]
