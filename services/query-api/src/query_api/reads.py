"""Reading analyses for the API (AsyncClient): one bounded list page, one detail.

Every call has an explicit timeout and a bounded retry, so a Firestore outage answers
quickly (as 503, via the shared error handlers) instead of hanging a poller for a minute.
Nothing read here is kept after the call returns: no caches keyed by analysis.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core.retry import AsyncRetry, if_transient_error
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.field_path import FieldPath

from flokraft_core.store.change_markers import Marker, read_marker
from flokraft_core.store.client import list_query
from flokraft_core.store.document import (
    DETAIL_EXTRA_FIELDS,
    LIST_FIELDS,
    OWNER_FIELD,
    AnalysisDetail,
    AnalysisListItem,
    Fields,
    detail_from_document,
    is_valid_document_id,
    list_item_from_document,
)
from flokraft_core.store.page_tokens import PageCursor
from flokraft_core.store.read_costs import count_query, count_reads


class InvalidCursor(ValueError):
    """A page cursor Firestore cannot start after (e.g. a hand-made token's document id)."""


@dataclass(frozen=True)
class ListFilters:
    user_id: str | None
    analysis_type: str | None
    status: str | None


@dataclass(frozen=True)
class AnalysisPage:
    items: list[AnalysisListItem]
    # Set when more rows follow; None on the last page.
    next_cursor: PageCursor | None


@dataclass(frozen=True)
class OwnedDetail:
    detail: AnalysisDetail
    owner: str | None


def bounded_retry(total_seconds: float) -> AsyncRetry:
    """Transient errors (UNAVAILABLE, ...) are retried briefly, within `total_seconds`."""
    return AsyncRetry(
        predicate=if_transient_error,
        initial=0.05,
        maximum=0.5,
        multiplier=2.0,
        timeout=total_seconds,
    )


class AnalysisReads:
    def __init__(
        self,
        db: firestore.AsyncClient,
        collection: str,
        *,
        markers_collection: str,
        timeout_seconds: float,
        retry_seconds: float,
    ) -> None:
        self._collection = db.collection(collection)
        self._markers = db.collection(markers_collection)
        self._timeout = timeout_seconds
        self._retry = bounded_retry(retry_seconds) if retry_seconds > 0 else None

    async def marker(self, user_id: str) -> Marker | None:
        """The user's change marker (one document), or None if the user has none yet."""
        return await read_marker(
            self._markers, user_id, rpc_timeout=self._timeout, retry=self._retry
        )

    async def list_page(
        self, filters: ListFilters, *, cursor: PageCursor | None, limit: int
    ) -> AnalysisPage:
        if cursor is not None and not is_valid_document_id(cursor.doc_id):
            raise InvalidCursor("page_token names no valid document")
        query = list_query(
            self._collection,
            user_id=filters.user_id,
            analysis_type=filters.analysis_type,
            status=filters.status,
            cursor=cursor,
            # One row more than the page, to know whether a next page exists.
            limit=limit + 1,
        )
        try:
            snapshots = await query.get(retry=self._retry, timeout=self._timeout)
        except gexc.InvalidArgument as exc:
            if cursor is not None:
                raise InvalidCursor(str(exc)) from exc
            raise
        count_query(len(snapshots))
        items: list[AnalysisListItem] = []
        last: tuple[str, dict[str, Any]] | None = None
        for snapshot in snapshots[:limit]:
            data = snapshot.to_dict() or {}
            items.append(list_item_from_document(snapshot.id, data))
            last = (snapshot.id, data)
        next_cursor = None
        if len(snapshots) > limit and last is not None:
            next_cursor = _cursor_after(*last)
        return AnalysisPage(items=items, next_cursor=next_cursor)

    async def get_detail(self, doc_id: str, *, owner: str | None = None) -> OwnedDetail | None:
        """The detail fields and the owner, or None when there is no such analysis, or
        (with `owner`) when it belongs to someone else.

        With `owner`, the owner is part of the read itself: a query on the document id and
        the owner returns nothing for someone else's analysis exactly as for a missing
        one, so neither reads the large fields and the two cost the same (a timing
        difference would tell which ids exist). Without it (admins) it is a point read.
        """
        if not is_valid_document_id(doc_id):
            return None
        fields = [*LIST_FIELDS, OWNER_FIELD, *DETAIL_EXTRA_FIELDS]
        document = self._collection.document(doc_id)
        if owner is None:
            snapshot = await document.get(
                field_paths=fields, retry=self._retry, timeout=self._timeout
            )
            count_reads(1)
            if not snapshot.exists:
                return None
        else:
            query = (
                self._collection.where(filter=FieldFilter(FieldPath.document_id(), "==", document))
                .where(filter=FieldFilter(OWNER_FIELD, "==", owner))
                .select(fields)
                .limit(1)
            )
            found = await query.get(retry=self._retry, timeout=self._timeout)
            count_query(len(found))
            if not found:
                return None
            snapshot = found[0]
        data: dict[str, Any] = snapshot.to_dict() or {}
        stored_owner = data.get(OWNER_FIELD)
        return OwnedDetail(
            detail=detail_from_document(snapshot.id, data),
            owner=stored_owner if isinstance(stored_owner, str) else None,
        )


def _cursor_after(doc_id: str, data: dict[str, Any]) -> PageCursor | None:
    # The raw value, not the converted one: Firestore timestamps keep their nanoseconds,
    # so the next page starts exactly after this row.
    raw = data.get(Fields.TIMESTAMP)
    if not isinstance(raw, datetime):
        # Old documents with a non-timestamp `timestamp` sort before all timestamps (in
        # Firestore's type order, descending) and cannot be encoded in a cursor: such a
        # page is the last one the cursor can reach.
        return None
    return PageCursor(timestamp=raw, doc_id=doc_id)
