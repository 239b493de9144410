from __future__ import annotations

import pytest

from flokraft_core.store.document import Status
from flokraft_core.store.status_table import (
    TABLE,
    InvalidTransition,
    Move,
    allows,
    can_rerun,
    can_transition,
    ensure_transition,
)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (Status.QUEUED, Status.RUNNING),
        (Status.RUNNING, Status.DONE),
        (Status.RUNNING, Status.FAILED),
        (Status.DONE, Status.QUEUED),
        (Status.FAILED, Status.QUEUED),
    ],
)
def test_allowed_transitions(current: Status, target: Status) -> None:
    ensure_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (Status.DONE, Status.RUNNING),
        (Status.DONE, Status.DONE),
        (Status.QUEUED, Status.DONE),
        (Status.FAILED, Status.RUNNING),
    ],
)
def test_refused_transitions(current: Status, target: Status) -> None:
    assert not can_transition(current, target)
    with pytest.raises(InvalidTransition):
        ensure_transition(current, target)


def test_rerun_only_from_a_finished_or_legacy_document() -> None:
    assert can_rerun("done")
    assert can_rerun("failed")
    assert can_rerun(None)  # the old backend's documents had no status
    assert not can_rerun("queued")
    assert not can_rerun("running")


def test_cancel_stops_only_active_work_and_a_cancelled_one_can_be_rerun() -> None:
    assert allows(Move.CANCEL, "queued")
    assert allows(Move.CANCEL, "running")
    for finished in ("done", "failed", "cancelled", None):
        assert not allows(Move.CANCEL, finished)
    assert can_rerun("cancelled")
    # Cancelled is terminal: the analyzer can neither claim nor finish it.
    for move in (Move.CLAIM, Move.RECLAIM, Move.PROGRESS, Move.COMPLETE, Move.FAIL):
        assert not allows(move, "cancelled")


def test_the_sweeper_moves_only_active_work() -> None:
    for move in (Move.REDISPATCH, Move.ABANDON):
        assert TABLE[move].recovery
        assert {s for s in Status if allows(move, s)} == {Status.QUEUED, Status.RUNNING}
        assert not allows(move, None)  # the old backend's documents without a status


def test_delete_takes_any_document_and_leaves_none() -> None:
    row = TABLE[Move.DELETE]
    assert row.deletes
    assert row.target is None
    assert all(allows(Move.DELETE, s) for s in [*Status, None])
    assert [m for m, r in TABLE.items() if r.deletes] == [Move.DELETE]
