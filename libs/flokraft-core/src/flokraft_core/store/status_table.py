"""The status table: every write to an analysis document names one of these moves, and
flokraft_core.store.write_path refuses a move the document's current status does not allow.

    create                      (no document)            -> queued
    rerun                       done | failed | cancelled | none -> queued
    claim                       queued | none            -> running
    reclaim       (recovery)    running                  -> running   its lease ran out
    progress                    running                  -> (unchanged)
    complete                    running                  -> done
    complete_requeued (recovery) queued | none           -> done      a duplicate finished
    requeue                     running                  -> queued    the attempt is retried
    fail                        queued | running | none  -> failed
    give_up                     queued | running | none  -> failed    dead-lettered
    cancel                      queued | running         -> cancelled  its owner or an admin
    delete                      any                      -> (no document)
    redispatch   (recovery)     queued | running         -> queued    stale work sent again
    abandon      (recovery)     queued | running         -> failed    stale work given up
    clear_publish_pending       any                      -> (unchanged)

"none" is a document without a (known) status: the old Flask backend wrote those. No job is
expected for such a document unless someone reruns it, so it is not active work: cancel
and the sweeper leave it alone.
docs/architecture.md draws this table; tests/test_architecture_doc.py keeps the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from flokraft_core.store.document import Status


class Move(StrEnum):
    CREATE = "create"
    RERUN = "rerun"
    CLAIM = "claim"
    RECLAIM = "reclaim"
    PROGRESS = "progress"
    COMPLETE = "complete"
    COMPLETE_REQUEUED = "complete_requeued"
    REQUEUE = "requeue"
    FAIL = "fail"
    GIVE_UP = "give_up"
    CANCEL = "cancel"
    DELETE = "delete"
    REDISPATCH = "redispatch"
    ABANDON = "abandon"
    CLEAR_PUBLISH_PENDING = "clear_publish_pending"


@dataclass(frozen=True)
class Row:
    # `None` in `sources`: a document without a known status (the old backend's).
    sources: frozenset[Status | None]
    # `None`: the move leaves the status as it is.
    target: Status | None
    # Recovery rows repair what concurrency leaves behind (a dead worker's lease, a
    # duplicate delivery); they are not part of the ordinary lifecycle `can_transition`
    # answers for.
    recovery: bool = False
    # True only for CREATE: the document must not exist yet.
    creates: bool = False
    # True only for DELETE: the move's result is no document (`target` is None).
    deletes: bool = False


_ANY: Final[frozenset[Status | None]] = frozenset({*Status, None})
_UNFINISHED: Final[frozenset[Status | None]] = frozenset({Status.QUEUED, Status.RUNNING, None})
# Work someone is (or should be) doing: what a cancel stops and the sweeper looks after.
_ACTIVE: Final[frozenset[Status | None]] = frozenset({Status.QUEUED, Status.RUNNING})

TABLE: Final[dict[Move, Row]] = {
    Move.CREATE: Row(frozenset(), Status.QUEUED, creates=True),
    Move.RERUN: Row(frozenset({Status.DONE, Status.FAILED, Status.CANCELLED, None}), Status.QUEUED),
    Move.CLAIM: Row(frozenset({Status.QUEUED, None}), Status.RUNNING),
    # The worker holding the lease died (or this worker got its own job back).
    Move.RECLAIM: Row(frozenset({Status.RUNNING}), Status.RUNNING, recovery=True),
    Move.PROGRESS: Row(frozenset({Status.RUNNING}), None),
    Move.COMPLETE: Row(frozenset({Status.RUNNING}), Status.DONE),
    # A second delivery of the same generation finished after the job was given back for
    # a retry: its result is as valid as the retry's would be, so it is kept.
    Move.COMPLETE_REQUEUED: Row(frozenset({Status.QUEUED, None}), Status.DONE, recovery=True),
    Move.REQUEUE: Row(frozenset({Status.RUNNING}), Status.QUEUED),
    Move.FAIL: Row(_UNFINISHED, Status.FAILED),
    Move.GIVE_UP: Row(_UNFINISHED, Status.FAILED),
    # The analyzer finds a cancelled document at its next progress write and stops.
    Move.CANCEL: Row(_ACTIVE, Status.CANCELLED),
    # The document goes; a deleted analysis's writes find nothing to update.
    Move.DELETE: Row(_ANY, None, deletes=True),
    # rerun-api's sweeper: no worker has touched the job for too long (its lease expired
    # long ago, or its message never arrived): a new generation is queued, so anything
    # the lost run still writes is refused as stale. An admin's rerun of queued or
    # running work is the same move, made at once...
    Move.REDISPATCH: Row(_ACTIVE, Status.QUEUED, recovery=True),
    # ... a bounded number of times, then it ends with a reason the user can read; an
    # admin's fail of stuck work (POST /analyses/{id}/fail) is the same move.
    Move.ABANDON: Row(_ACTIVE, Status.FAILED, recovery=True),
    Move.CLEAR_PUBLISH_PENDING: Row(_ANY, None),
}

# Statuses that hold a place in the owner's active set (the per-user cap on work waiting
# for the analyzers): a move into one adds the analysis there, a move out of them removes
# it (flokraft_core.store.write_path.stage_write).
ACTIVE: Final[frozenset[Status]] = frozenset({Status.QUEUED, Status.RUNNING})

# Statuses from which a user may ask for a rerun; queued/running answer 409 instead.
RERUNNABLE: Final[frozenset[Status]] = frozenset(
    s for s in TABLE[Move.RERUN].sources if s is not None
)


class InvalidTransition(ValueError):
    def __init__(self, current: Status | str | None, target: Status | Move) -> None:
        super().__init__(f"cannot {target.value} an analysis that is {current!s}")
        self.current = current
        self.target = target


def parse_status(value: object) -> Status | None:
    """Documents from the old backend may hold no or unknown statuses."""
    try:
        return Status(str(value))
    except ValueError:
        return None


def allows(move: Move, current: Status | str | None) -> bool:
    """Whether `move` may be applied to an existing document in status `current`."""
    return parse_status(current) in TABLE[move].sources


def ensure_move(move: Move, current: Status | str | None) -> None:
    if not allows(move, current):
        raise InvalidTransition(current, move)


def can_transition(current: Status | str | None, target: Status) -> bool:
    """Whether the ordinary lifecycle (the table without its recovery rows) leads from
    `current` to `target`."""
    parsed = parse_status(current)
    return any(
        row.target is target and parsed in row.sources and not row.recovery
        for row in TABLE.values()
    )


def ensure_transition(current: Status | str | None, target: Status) -> None:
    if not can_transition(current, target):
        raise InvalidTransition(current, target)


def is_active(current: Status | str | None) -> bool:
    return parse_status(current) in ACTIVE


def can_rerun(current: Status | str | None) -> bool:
    return allows(Move.RERUN, current)
