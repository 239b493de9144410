"""The Firestore emulator launcher must answer list queries as real Firestore does:
cursors, __name__ ordering and tie-breaking, projections, offset, and no documents that
lack an ordered field. Our pagination is tested against it, so it is tested itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from google.cloud import firestore as gfs
from google.cloud.firestore_v1.base_query import FieldFilter

from flokraft_devstack.processes import ManagedProcess

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


@pytest.fixture
def mixed(firestore: ManagedProcess, project_id: str) -> gfs.CollectionReference:
    db = gfs.Client(project=project_id)
    ref = db.collection("mixed")
    docs = {
        "a": {"n": 1, "s": "x", "tags": ["red", "blue"], "m": {"k": 1}},
        "b": {"n": 2.5, "s": "y", "tags": ["green"], "m": {"k": 2}},
        "c": {"n": "3", "s": None, "tags": []},
        "d": {"s": "x"},
    }
    for doc_id, data in docs.items():
        ref.document(doc_id).set(data)
    return ref


@pytest.mark.parametrize(
    ("field", "op", "value", "expected"),
    [
        ("n", "==", 1, ["a"]),
        ("n", ">", 1, ["b"]),  # only numbers compare with numbers: "3" is left out
        ("n", ">=", 1, ["a", "b"]),
        ("n", "<", "4", ["c"]),
        ("s", "!=", "x", ["b"]),  # != leaves out null and missing fields
        ("s", "in", ["x", "y"], ["a", "b", "d"]),
        ("s", "not-in", ["x"], ["b"]),
        ("tags", "array_contains", "blue", ["a"]),
        ("tags", "array_contains_any", ["green", "red"], ["a", "b"]),
        ("m.k", "==", 2, ["b"]),
        ("s", "==", None, ["c"]),
    ],
)
def test_filters_follow_firestore_semantics(mixed, field, op, value, expected) -> None:
    assert sorted(ids(mixed.where(filter=FieldFilter(field, op, value)))) == expected


def test_or_and_and_filters(mixed) -> None:
    from google.cloud.firestore_v1.base_query import And, Or

    either = Or([FieldFilter("n", "==", 1), FieldFilter("s", "==", "y")])
    both = And([FieldFilter("s", "==", "x"), FieldFilter("n", "==", 1)])
    assert sorted(ids(mixed.where(filter=either))) == ["a", "b"]
    assert ids(mixed.where(filter=both)) == ["a"]


def test_every_field_transform_of_a_write_is_applied(
    firestore: ManagedProcess, project_id: str
) -> None:
    # The change marker's bump is {version: Increment(1), changed_at: SERVER_TIMESTAMP};
    # the package dropped every transform after a server timestamp (sorted first).
    db = gfs.Client(project=project_id)
    ref = db.collection("markers").document("u")
    for _ in range(2):
        batch = db.batch()
        batch.set(
            ref,
            {"user_id": "u", "version": gfs.Increment(1), "changed_at": gfs.SERVER_TIMESTAMP},
            merge=True,
        )
        batch.commit()
    data = ref.get().to_dict() or {}
    assert data["version"] == 2
    assert isinstance(data["changed_at"], datetime)
    assert data["user_id"] == "u"
