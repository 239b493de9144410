"""The per-user change marker: one small document per user whose `version` moves whenever
anything that user's list shows changes.

Why it exists: almost every poll of `GET /analyses` finds nothing new, yet answering it
from the list query costs a 51-document read. With the marker, query-api reads one
document (or nothing, from its listener) and answers 304 when the version is the one the
client's ETag was made from.

The contract that makes that correct: every write that changes a list-visible field bumps
the owner's marker in the same transaction or batch (the analysis write path calls
`bump_marker`), and readers read the marker before the page, so a page is never tagged
with a version newer than its data.

Document `analysis_feeds/{marker_id(user_id)}`:
    {user_id: str, version: int, changed_at: timestamp, active: [analysis id, ...]}

`version` is a server-side Increment, so a bump is a blind write: it reads nothing, and
the analyzer's writes never contend on the marker.

`active` is the user's active set: the ids of their analyses that are queued or running,
kept by the same writes (a move into an active status adds the id with ArrayUnion, a move
out of one removes it with ArrayRemove; flokraft_core.store.write_path decides which).
rerun-api's create and rerun read the marker inside their transaction and refuse when the
set is at the cap, so two creates of one user are serialised on this one document: the
cap holds under concurrency, with no count query. Documents no write of ours moved into an
active status (the old backend's, demo data) are not in the set, and removing an id that
is absent is a no-op, so the set never counts work nobody queued through it.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from google.api_core import exceptions as gexc
from google.api_core.retry import AsyncRetry
from google.cloud import firestore
from google.cloud.firestore_v1.async_collection import AsyncCollectionReference
from google.cloud.firestore_v1.base_collection import BaseCollectionReference
from google.cloud.firestore_v1.base_document import DocumentSnapshot

from flokraft_core.settings import CoreSettings
from flokraft_core.store.client import sync_client
from flokraft_core.store.read_costs import count_reads

USER_FIELD: Final = "user_id"
VERSION_FIELD: Final = "version"
CHANGED_AT_FIELD: Final = "changed_at"
ACTIVE_FIELD: Final = "active"
_HASHED_PREFIX: Final = "~u"
_MAX_ID_BYTES: Final = 1500


class MarkerWriter(Protocol):
    """A transaction or write batch, sync or async: what a bump is written into."""

    def set(self, reference: Any, document_data: dict[str, Any], merge: bool = ...) -> Any: ...


@dataclass(frozen=True)
class Marker:
    user_id: str
    version: int
    changed_at: datetime | None


def marker_id(user_id: str) -> str:
    """The marker's document id: the user id itself when Firestore accepts it as an id,
    otherwise a stable hash (ids like `__x__`, `.` or ones with `/` are not accepted, and a
    marker write that fails would fail the user's analysis write with it)."""
    if (
        user_id
        and "/" not in user_id
        and user_id not in {".", ".."}
        and not (user_id.startswith("__") and user_id.endswith("__"))
        and not user_id.startswith(_HASHED_PREFIX)
        and len(user_id.encode()) <= _MAX_ID_BYTES
    ):
        return user_id
    return _HASHED_PREFIX + hashlib.sha256(user_id.encode()).hexdigest()[:40]


def bump_fields(user_id: str, active: tuple[str, bool] | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {
        USER_FIELD: user_id,
        VERSION_FIELD: firestore.Increment(1),
        CHANGED_AT_FIELD: firestore.SERVER_TIMESTAMP,
    }
    if active is not None:
        analysis_id, is_active = active
        change = firestore.ArrayUnion if is_active else firestore.ArrayRemove
        fields[ACTIVE_FIELD] = change([analysis_id])
    return fields


def bump_marker(
    writer: MarkerWriter,
    markers: BaseCollectionReference[Any],
    user_id: str,
    *,
    active: tuple[str, bool] | None = None,
) -> None:
    """Adds the bump to `writer`; it lands atomically with the write it accompanies.
    Merge-set, so the first bump creates the marker and later ones never clobber it.
    `active` = (analysis id, whether it is now queued or running) updates the active set."""
    writer.set(markers.document(marker_id(user_id)), bump_fields(user_id, active), merge=True)


def active_ids(data: dict[str, Any] | None) -> list[str]:
    """The active set of a marker document (empty when it has none)."""
    value = (data or {}).get(ACTIVE_FIELD)
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def marker_from_snapshot(snapshot: DocumentSnapshot[Any]) -> Marker | None:
    if not snapshot.exists:
        return None
    data = snapshot.to_dict() or {}
    version = data.get(VERSION_FIELD)
    user_id = data.get(USER_FIELD)
    if not isinstance(version, int) or isinstance(version, bool) or not isinstance(user_id, str):
        return None  # not written by bump_marker: treat the user as having no marker
    changed_at = data.get(CHANGED_AT_FIELD)
    return Marker(user_id, version, changed_at if isinstance(changed_at, datetime) else None)


async def read_marker(
    markers: AsyncCollectionReference,
    user_id: str,
    *,
    rpc_timeout: float,
    retry: AsyncRetry | None,
) -> Marker | None:
    """One document read; None when the user has no marker yet."""
    snapshot = await markers.document(marker_id(user_id)).get(retry=retry, timeout=rpc_timeout)
    count_reads(1)
    return marker_from_snapshot(snapshot)


# --- backfill -------------------------------------------------------------------------


@dataclass(frozen=True)
class BackfillReport:
    analyses_scanned: int
    users: int
    markers_created: int


def backfill_markers(
    db: firestore.Client,
    analyses_collection: str,
    markers_collection: str,
    *,
    page_size: int = 500,
) -> BackfillReport:
    """Creates a marker (version 1) for every user who owns analyses but has none: users
    whose documents the old backend (or a tool outside the services) wrote. Existing
    markers are left alone, so it is safe to run at any time, as often as needed.

    Reads every analysis once (only `user_id`, in pages ordered by document id)."""
    analyses = db.collection(analyses_collection)
    markers = db.collection(markers_collection)
    users: set[str] = set()
    scanned = 0
    last: DocumentSnapshot[Any] | None = None
    while True:
        query = analyses.select([USER_FIELD]).order_by("__name__").limit(page_size)
        if last is not None:
            query = query.start_after(last)
        page = list(query.stream())
        for snapshot in page:
            owner = (snapshot.to_dict() or {}).get(USER_FIELD)
            if isinstance(owner, str) and owner:
                users.add(owner)
        scanned += len(page)
        if len(page) < page_size:
            break
        last = page[-1]
    created = 0
    for user_id in sorted(users):
        try:
            markers.document(marker_id(user_id)).create(
                {
                    USER_FIELD: user_id,
                    VERSION_FIELD: 1,
                    CHANGED_AT_FIELD: firestore.SERVER_TIMESTAMP,
                }
            )
        except gexc.AlreadyExists:
            continue
        created += 1
    return BackfillReport(analyses_scanned=scanned, users=len(users), markers_created=created)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m flokraft_core.store.change_markers",
        description="Per-user change markers behind the list ETag.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("backfill", help="create markers for users who have none (idempotent)")
    parser.parse_args(argv)
    settings = CoreSettings()
    report = backfill_markers(
        sync_client(settings), settings.firestore_collection, settings.firestore_feed_collection
    )
    print(
        f"scanned {report.analyses_scanned} analyses of {report.users} users; "
        f"created {report.markers_created} markers"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
