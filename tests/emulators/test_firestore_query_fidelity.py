"""The Firestore emulator launcher must answer list queries as real Firestore does:
cursors, __name__ ordering and tie-breaking, projections, offset, and no documents that
lack an ordered field. Our pagination is tested against it, so it is tested itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.cloud import firestore as gfs
from google.cloud.firestore_v1.base_query import FieldFilter

from tests.support.processes import ManagedProcess

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def collection(firestore: ManagedProcess, project_id: str) -> gfs.CollectionReference:
    db = gfs.Client(project=project_id)
    ref = db.collection("things")
    batch = db.batch()
    for i in range(6):
        # Pairs share a timestamp, so the __name__ tie-breaker decides their order.
        batch.set(
            ref.document(f"d{i}"), {"user": "u", "ts": T0 + timedelta(seconds=i // 2), "n": i}
        )
    batch.set(ref.document("no-ts"), {"user": "u", "n": 99})
    batch.set(ref.document("other"), {"user": "v", "ts": T0, "n": 100})
    batch.commit()
    return ref


def ids(query: gfs.Query) -> list[str]:
    return [doc.id for doc in query.stream()]


def newest_first(ref: gfs.CollectionReference) -> gfs.Query:
    return (
        ref.where(filter=FieldFilter("user", "==", "u"))
        .order_by("ts", direction="DESCENDING")
        .order_by("__name__", direction="DESCENDING")
    )


def test_order_with_name_tie_breaker_and_missing_fields_left_out(collection) -> None:
    assert ids(newest_first(collection)) == ["d5", "d4", "d3", "d2", "d1", "d0"]


def test_cursor_pages_cover_everything_once(collection) -> None:
    query = newest_first(collection).limit(4)
    first = list(query.stream())
    last = first[-1]
    cursor = {"ts": last.get("ts"), "__name__": collection.document(last.id)}
    second = ids(query.start_after(cursor))
    assert [d.id for d in first] + second == ["d5", "d4", "d3", "d2", "d1", "d0"]


def test_start_at_end_before_and_snapshot_cursors(collection) -> None:
    query = newest_first(collection)
    one_second = {"ts": T0 + timedelta(seconds=1)}
    by_ts = collection.where(filter=FieldFilter("user", "==", "u")).order_by(
        "ts", direction="DESCENDING"
    )
    assert ids(by_ts.start_at(one_second)) == ["d3", "d2", "d1", "d0"]
    assert ids(by_ts.end_before(one_second)) == ["d5", "d4"]
    assert ids(query.start_after(collection.document("d4").get())) == ["d3", "d2", "d1", "d0"]


def test_projection_and_offset(collection) -> None:
    docs = list(newest_first(collection).select(["ts"]).offset(1).limit(2).stream())
    assert [d.id for d in docs] == ["d4", "d3"]
    assert all(set(d.to_dict()) == {"ts"} for d in docs)


def test_count_applies_the_filters(collection) -> None:
    result = collection.where(filter=FieldFilter("user", "==", "u")).count().get()
    assert result[0][0].value == 7
