"""Firestore clients and the one list query every reader builds.

The query builder works on a sync or an async collection reference alike (their query
builders share one interface), so query-api and the benchmarks' raw query run exactly
the same query.
"""

from __future__ import annotations

from typing import Any, overload

from google.cloud import firestore
from google.cloud.firestore_v1.async_collection import AsyncCollectionReference
from google.cloud.firestore_v1.async_query import AsyncQuery
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.collection import CollectionReference
from google.cloud.firestore_v1.query import Query

from flokraft_core.settings import CoreSettings
from flokraft_core.store.document import LIST_FIELDS, OWNER_FIELD, Fields
from flokraft_core.store.page_tokens import PageCursor


def sync_client(settings: CoreSettings) -> firestore.Client:
    return firestore.Client(
        project=settings.google_cloud_project, database=settings.firestore_database
    )


def async_client(settings: CoreSettings) -> firestore.AsyncClient:
    return firestore.AsyncClient(
        project=settings.google_cloud_project, database=settings.firestore_database
    )


@overload
def list_query(
    collection: CollectionReference,
    *,
    user_id: str | None,
    analysis_type: str | None,
    status: str | None,
    cursor: PageCursor | None,
    limit: int,
    extra_fields: tuple[str, ...] = (),
) -> Query: ...


@overload
def list_query(
    collection: AsyncCollectionReference,
    *,
    user_id: str | None,
    analysis_type: str | None,
    status: str | None,
    cursor: PageCursor | None,
    limit: int,
    extra_fields: tuple[str, ...] = (),
) -> AsyncQuery: ...


def list_query(
    collection: CollectionReference | AsyncCollectionReference,
    *,
    user_id: str | None,
    analysis_type: str | None,
    status: str | None,
    cursor: PageCursor | None,
    limit: int,
    extra_fields: tuple[str, ...] = (),
) -> Query | AsyncQuery:
    """Newest first, bounded, projected to the list fields.

    `limit` is what the caller asks the database for; callers ask for one more row than
    they return so they know whether a next page exists without a count query.
    Needs the composite indexes in helm/flokraft/files/firestore.indexes.json on real
    Firestore.
    """
    query: Any = collection.select([*LIST_FIELDS, OWNER_FIELD, *extra_fields])
    if user_id is not None:
        query = query.where(filter=FieldFilter(OWNER_FIELD, "==", user_id))
    if analysis_type is not None:
        query = query.where(filter=FieldFilter(Fields.ANALYSIS_TYPE, "==", analysis_type))
    if status is not None:
        query = query.where(filter=FieldFilter(Fields.STATUS, "==", status))
    query = query.order_by(Fields.TIMESTAMP, direction="DESCENDING").order_by(
        "__name__", direction="DESCENDING"
    )
    if cursor is not None:
        query = query.start_after(
            {Fields.TIMESTAMP: cursor.timestamp, "__name__": collection.document(cursor.doc_id)}
        )
    limited: Query | AsyncQuery = query.limit(limit)
    return limited
