from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from flokraft_core.store.document import (
    LIST_FIELDS,
    detail_from_document,
    list_item_from_document,
)

OLD_BACKEND_DOC = {
    "user_id": "u1",
    "timestamp": datetime(2023, 3, 1, 10, 0, tzinfo=UTC),
    "dance_type": "salsa",
    "dancers": ["a", "b"],
    "analysis_type": "couple",
    "processed": True,
    "status": "completed",
    "total_score": 87,
    "text": "x" * 10_000,
    "video_url": "data:video/mp4;base64,AAAA",
}


def test_list_item_holds_only_the_list_fields() -> None:
    item = list_item_from_document("d1", OLD_BACKEND_DOC).model_dump()
    assert set(item) == {"id", *LIST_FIELDS}
    assert item["total_score"] == 87.0


def test_detail_never_holds_the_video_url() -> None:
    detail = detail_from_document("d1", OLD_BACKEND_DOC).model_dump()
    assert "video_url" not in detail
    assert detail["text"] == OLD_BACKEND_DOC["text"]
    assert detail["progress"] is None


def test_string_and_epoch_timestamps_are_read() -> None:
    assert list_item_from_document("a", {"timestamp": "2024-01-01T00:00:00Z"}).timestamp == (
        datetime(2024, 1, 1, tzinfo=UTC)
    )
    assert list_item_from_document("a", {"timestamp": 1_700_000_000_000}).timestamp == (
        datetime.fromtimestamp(1_700_000_000, tz=UTC)
    )
    assert list_item_from_document("a", {"timestamp": "yesterday"}).timestamp is None


values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(), st.lists(st.text())
)


@given(st.dictionaries(st.sampled_from([*LIST_FIELDS, "progress", "text", "x"]), values))
def test_any_document_shape_converts(data: dict[str, object]) -> None:
    detail = detail_from_document("id", data)
    assert detail.progress is None or 0.0 <= detail.progress <= 1.0
    detail.model_dump_json()  # always serialisable: no NaN or infinity leaks through


def test_demo_data_never_puts_a_user_at_the_active_cap() -> None:
    from collections import Counter

    from flokraft_core.dev.demo_data import MAX_ACTIVE_PER_USER, _batches

    rows = [data for batch in _batches(1000, 42) for _, data in batch]
    active = Counter(d["user_id"] for d in rows if d["status"] in {"queued", "running"})
    statuses = Counter(d["status"] for d in rows)
    # Every user has some stale work for the sweeper to find, and none is locked out
    # (MAX_ACTIVE_ANALYSES_PER_USER is 5 by default).
    assert set(active.values()) == {MAX_ACTIVE_PER_USER}
    assert MAX_ACTIVE_PER_USER < 5
    assert len(active) == 10
    assert statuses["done"] > 900
