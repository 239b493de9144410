"""The status machine: queued -> running -> done | failed; a rerun moves done|failed -> queued."""

from __future__ import annotations

from typing import Final

from flokraft_core.analyses import Status

TRANSITIONS: Final[dict[Status, frozenset[Status]]] = {
    Status.QUEUED: frozenset({Status.RUNNING, Status.FAILED}),
    # running -> queued happens when a worker gives a job back (nack) for a retry.
    Status.RUNNING: frozenset({Status.DONE, Status.FAILED, Status.QUEUED}),
    Status.DONE: frozenset({Status.QUEUED}),
    Status.FAILED: frozenset({Status.QUEUED}),
}

# Statuses from which a user may ask for a rerun; queued/running answer 409 instead.
RERUNNABLE: Final[frozenset[Status]] = frozenset({Status.DONE, Status.FAILED})


class InvalidTransition(ValueError):
    def __init__(self, current: Status | str | None, target: Status) -> None:
        super().__init__(f"cannot move an analysis from {current!s} to {target.value}")
        self.current = current
        self.target = target


def parse_status(value: object) -> Status | None:
    """Documents from the old backend may hold no or unknown statuses."""
    try:
        return Status(str(value))
    except ValueError:
        return None


def can_transition(current: Status | str | None, target: Status) -> bool:
    parsed = parse_status(current)
    if parsed is None:
        # An old document without a status can only be (re)queued.
        return target is Status.QUEUED
    return target in TRANSITIONS[parsed]


def ensure_transition(current: Status | str | None, target: Status) -> None:
    if not can_transition(current, target):
        raise InvalidTransition(current, target)


def can_rerun(current: Status | str | None) -> bool:
    parsed = parse_status(current)
    return parsed is None or parsed in RERUNNABLE
