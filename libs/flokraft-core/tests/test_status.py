from __future__ import annotations

import pytest

from flokraft_core.analyses import Status
from flokraft_core.status import (
    InvalidTransition,
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
