"""The one write path: every move is checked against the status table before anything is
staged, and the write knows its owner and which list fields it changes. Staging sends
nothing, so a client pointed at an unused port is enough."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from google.cloud import firestore

from flokraft_core.store.document import LIST_FIELDS, Fields, Status
from flokraft_core.store.status_table import TABLE, InvalidTransition, Move
from flokraft_core.store.write_path import stage_write

MARKERS = "analysis_feeds"


def markers(db: firestore.Client) -> firestore.CollectionReference:
    return db.collection(MARKERS)


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch) -> Iterator[firestore.Client]:
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:9")
    client = firestore.Client(project="unit")
    yield client
    client.close()  # type: ignore[no-untyped-call]


def doc(status: str | None, **extra: Any) -> dict[str, Any]:
    return {"user_id": "u1", "status": status, "generation": 1, **extra}


def staged_count(batch: Any) -> int:
    return len(batch._write_pbs)


def test_create_queues_and_lists_every_field(db: firestore.Client) -> None:
    batch = db.batch()
    ref = db.collection("analyses").document("a1")
    data = {"user_id": "u1", "processed": False}
    staged = stage_write(batch, ref, Move.CREATE, data, markers=markers(db), before=None)
    assert staged.changes[Fields.STATUS] == Status.QUEUED.value
    assert Fields.UPDATED_AT in staged.changes
    assert staged.owner == "u1"
    assert staged.list_changes == {"status", "processed"}
    # The analysis, then its owner's change-marker bump, in the same batch.
    assert staged_count(batch) == 2
    assert batch._write_pbs[1].update.name.endswith(f"/{MARKERS}/u1")


def test_create_refuses_an_existing_document(db: firestore.Client) -> None:
    batch = db.batch()
    ref = db.collection("analyses").document("a1")
    with pytest.raises(InvalidTransition):
        stage_write(batch, ref, Move.CREATE, {}, markers=markers(db), before=doc("done"))
    assert staged_count(batch) == 0


@pytest.mark.parametrize(
    ("move", "status"),
    [
        (Move.CLAIM, "done"),
        (Move.CLAIM, "running"),  # only a RECLAIM takes a running job over
        (Move.COMPLETE, "queued"),  # only COMPLETE_REQUEUED finishes a requeued job
        (Move.COMPLETE, "done"),
        (Move.REQUEUE, "queued"),
        (Move.FAIL, "done"),
        (Move.RERUN, "running"),
        (Move.PROGRESS, "queued"),
    ],
)
def test_moves_the_table_forbids_stage_nothing(
    db: firestore.Client, move: Move, status: str
) -> None:
    batch = db.batch()
    ref = db.collection("analyses").document("a1")
    with pytest.raises(InvalidTransition):
        stage_write(batch, ref, move, {}, markers=markers(db), before=doc(status))
    assert staged_count(batch) == 0


def test_the_moves_concurrency_needs_are_named_rows(db: firestore.Client) -> None:
    ref = db.collection("analyses").document("a1")
    reclaimed = stage_write(
        db.batch(), ref, Move.RECLAIM, {}, markers=markers(db), before=doc("running")
    )
    assert reclaimed.changes[Fields.STATUS] == "running"
    late = stage_write(
        db.batch(),
        ref,
        Move.COMPLETE_REQUEUED,
        {},
        markers=db.collection(MARKERS),
        before=doc("queued"),
    )
    assert late.changes[Fields.STATUS] == "done"
    assert TABLE[Move.RECLAIM].recovery
    assert TABLE[Move.COMPLETE_REQUEUED].recovery


def test_status_is_never_a_free_change(db: firestore.Client) -> None:
    ref = db.collection("analyses").document("a1")
    with pytest.raises(ValueError, match="status"):
        stage_write(
            db.batch(),
            ref,
            Move.PROGRESS,
            {"status": "done"},
            markers=db.collection(MARKERS),
            before=doc("running"),
        )


def test_list_changes_name_only_what_changes(db: firestore.Client) -> None:
    ref = db.collection("analyses").document("a1")
    progress = stage_write(
        db.batch(),
        ref,
        Move.PROGRESS,
        {Fields.PROGRESS: 0.5},
        markers=db.collection(MARKERS),
        before=doc("running"),
    )
    assert progress.list_changes == frozenset()
    assert progress.owner == "u1"
    done = stage_write(
        db.batch(),
        ref,
        Move.COMPLETE,
        {Fields.PROCESSED: True, Fields.TOTAL_SCORE: 80.0, Fields.TEXT: "r"},
        markers=db.collection(MARKERS),
        before=doc("running", processed=False),
    )
    assert done.list_changes == {"status", "processed", "total_score"}
    assert done.list_changes <= set(LIST_FIELDS)
    marker = stage_write(
        db.batch(),
        ref,
        Move.CLEAR_PUBLISH_PENDING,
        {Fields.PUBLISH_PENDING: False},
        markers=db.collection(MARKERS),
        before=doc("queued"),
    )
    assert marker.list_changes == frozenset()


def test_only_list_visible_changes_bump_the_owners_marker(db: firestore.Client) -> None:
    ref = db.collection("analyses").document("a1")

    def writes(move: Move, changes: dict[str, Any], before: dict[str, Any]) -> list[str]:
        batch = db.batch()
        stage_write(batch, ref, move, changes, markers=markers(db), before=before)
        return [pb.update.name.rsplit("/", 2)[-2] for pb in batch._write_pbs]

    assert writes(Move.CLAIM, {}, doc("queued")) == ["analyses", MARKERS]
    assert writes(Move.PROGRESS, {Fields.PROGRESS: 0.5}, doc("running")) == ["analyses"]
    assert writes(Move.CLEAR_PUBLISH_PENDING, {Fields.PUBLISH_PENDING: False}, doc("queued")) == [
        "analyses"
    ]
    done = {Fields.PROCESSED: True, Fields.TOTAL_SCORE: 80.0}
    assert writes(Move.COMPLETE, done, doc("running")) == ["analyses", MARKERS]
    # A document without an owner (written by a tool outside the services) is on no list.
    assert writes(Move.FAIL, {}, {"status": "running"}) == ["analyses"]


def _active_transform(batch: Any) -> tuple[str, list[str]] | None:
    """The active-set transform on the marker write: ("append"/"remove", ids), or None."""
    for write in batch._write_pbs[1:]:
        for transform in write.update_transforms:
            if transform.field_path != "active":
                continue
            if transform.append_missing_elements.values:
                return "append", [v.string_value for v in transform.append_missing_elements.values]
            return "remove", [v.string_value for v in transform.remove_all_from_array.values]
    return None


@pytest.mark.parametrize("move", list(Move))
def test_every_status_change_keeps_the_owners_active_set(db: firestore.Client, move: Move) -> None:
    """The per-user cap is released by every move out of queued/running, and taken by every
    move into them, whoever makes it: derived from the table alone, so a move added to the
    table gets it right without knowing about the cap."""
    row = TABLE[move]
    ref = db.collection("analyses").document("a1")
    for source in row.sources if not row.creates else {None}:
        batch = db.batch()
        before = None if row.creates else doc(None if source is None else source.value)
        changes = {"user_id": "u1"} if row.creates else {}
        staged = stage_write(batch, ref, move, changes, markers=markers(db), before=before)
        changed = (
            row.creates
            or row.deletes
            or (row.target is not None and (before or {}).get("status") != row.target.value)
        )
        if not changed:
            assert staged.active is None
            assert _active_transform(batch) is None
            continue
        active = row.target in {Status.QUEUED, Status.RUNNING}
        assert staged.active is active
        assert _active_transform(batch) == ("append" if active else "remove", ["a1"])


@pytest.mark.parametrize("status", ["queued", "running", "done", "failed", "cancelled", None])
def test_delete_removes_the_document_and_moves_the_owners_marker(
    db: firestore.Client, status: str | None
) -> None:
    batch = db.batch()
    ref = db.collection("analyses").document("a1")
    staged = stage_write(batch, ref, Move.DELETE, {}, markers=markers(db), before=doc(status))
    assert staged.deleted
    assert staged.list_changes == frozenset(LIST_FIELDS)
    assert staged_count(batch) == 2
    assert batch._write_pbs[0].delete.endswith("/analyses/a1")
    assert batch._write_pbs[1].update.name.endswith(f"/{MARKERS}/u1")


def test_delete_needs_a_document_and_changes_no_field(db: firestore.Client) -> None:
    ref = db.collection("analyses").document("a1")
    with pytest.raises(InvalidTransition):
        stage_write(db.batch(), ref, Move.DELETE, {}, markers=markers(db), before=None)
    with pytest.raises(ValueError, match="changes no field"):
        stage_write(
            db.batch(),
            ref,
            Move.DELETE,
            {Fields.ERROR: "x"},
            markers=markers(db),
            before=doc("done"),
        )


def test_cancel_sets_cancelled_and_moves_the_marker(db: firestore.Client) -> None:
    batch = db.batch()
    ref = db.collection("analyses").document("a1")
    staged = stage_write(batch, ref, Move.CANCEL, {}, markers=markers(db), before=doc("running"))
    assert staged.changes[Fields.STATUS] == Status.CANCELLED.value
    assert staged.list_changes == {"status"}
    assert staged_count(batch) == 2
    with pytest.raises(InvalidTransition):
        stage_write(db.batch(), ref, Move.CANCEL, {}, markers=markers(db), before=doc("done"))
