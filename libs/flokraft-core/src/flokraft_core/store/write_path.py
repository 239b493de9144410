"""The one write path of analysis documents: `stage_write`.

Every write to an analysis (create, rerun, claim, re-claim, progress, complete, requeue,
fail, give up, cancel, delete, the sweeper's re-dispatch and abandon, clearing the outbox
marker), from rerun-api's async client and the analyzer's sync one alike, is staged here
on a transaction or a write batch that the caller commits. Staging is synchronous on both
clients (a transaction is a batch that the client commits at the end), so one function
serves both.

Here, and only here:
- the move is checked against the status table (flokraft_core.store.status_table.TABLE) and the
  status it leads to is set: no caller writes `status` itself;
- `updated_at` is stamped;
- the document's owner and whether a list-visible field (LIST_FIELDS) changed are known,
  and a write that changes one bumps the owner's change marker in the same transaction
  or batch (flokraft_core.store.change_markers: what lets an unchanged poll cost one read);
- a move that changes the status adds the analysis to its owner's active set (on the same
  marker) when the new status is active (queued, running) and removes it otherwise: the
  per-user cap is released by every move out of queued/running without its caller
  knowing about the cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.cloud.firestore_v1._helpers import WriteOption
from google.cloud.firestore_v1.base_batch import BaseWriteBatch
from google.cloud.firestore_v1.base_collection import BaseCollectionReference
from google.cloud.firestore_v1.base_document import BaseDocumentReference

from flokraft_core.store.change_markers import bump_marker
from flokraft_core.store.document import LIST_FIELDS, OWNER_FIELD, Fields, utc_now
from flokraft_core.store.status_table import ACTIVE, TABLE, InvalidTransition, Move, parse_status


@dataclass(frozen=True)
class StagedWrite:
    move: Move
    analysis_id: str
    owner: str | None
    changes: dict[str, Any]
    # Which of LIST_FIELDS the write changes (all of them on create and delete).
    list_changes: frozenset[str]
    # Whether the analysis is queued or running after the write; None: the status stays.
    active: bool | None = None
    # After the move there is no document at all (DELETE).
    deleted: bool = False


def stage_write(
    writer: BaseWriteBatch,
    ref: BaseDocumentReference,
    move: Move,
    changes: dict[str, Any],
    *,
    before: dict[str, Any] | None,
    markers: BaseCollectionReference[Any],
    option: WriteOption | None = None,
) -> StagedWrite:
    """Stages `changes` to `ref` on `writer` (a transaction or a write batch, sync or
    async) as `move`.

    `before` is the document as the caller read it in the same transaction (None: it
    does not exist, which only CREATE accepts). DELETE stages the document's deletion
    (`changes` must be empty): the owner's list loses the row, so the marker moves. The
    one write without a read, clearing the outbox marker right after create or rerun,
    passes what that write committed with `option` = a last-update-time precondition,
    which makes the same promise: the commit fails unless the document is still exactly
    `before`.

    `markers` is the change-marker collection: a write that changes a list-visible field
    bumps its owner's marker there, atomically with the change.

    Raises InvalidTransition when the table does not allow `move` from `before`'s status.
    """
    row = TABLE[move]
    if Fields.STATUS in changes:
        raise ValueError("the status is set by the move, never passed as a change")
    if row.deletes and changes:
        raise ValueError("a delete changes no field")
    current = None if before is None else parse_status(before.get(Fields.STATUS))
    if row.creates != (before is None) or (before is not None and current not in row.sources):
        raise InvalidTransition("absent" if before is None else current, move)
    staged = dict(changes)
    if row.target is not None:
        staged[Fields.STATUS] = row.target.value
    if not row.deletes:
        staged.setdefault(Fields.UPDATED_AT, utc_now())
    base = before or {}
    owner = staged.get(OWNER_FIELD, base.get(OWNER_FIELD))
    list_changes = (
        frozenset(LIST_FIELDS)
        if row.deletes
        else frozenset(
            field
            for field in LIST_FIELDS
            if field in staged and (before is None or base.get(field) != staged[field])
        )
    )
    result = StagedWrite(
        move=move,
        analysis_id=ref.id,
        owner=owner if isinstance(owner, str) else None,
        changes=staged,
        list_changes=list_changes,
        # Derived from the target status alone, never from the document's history: a
        # move out of queued/running releases the cap whoever makes it.
        active=(row.target in ACTIVE) if Fields.STATUS in list_changes else None,
        deleted=row.deletes,
    )

    if row.creates:
        writer.create(ref, staged)
    elif row.deletes:
        writer.delete(ref, option=option)
    elif option is not None:
        writer.update(ref, staged, option=option)
    else:
        writer.update(ref, staged)

    # ---- Writes that must accompany every list-visible change go here. ---------------
    # `writer` commits them atomically with the analysis write above (same transaction or
    # batch), `result.owner` names whose list changed and `result.list_changes` which of
    # its fields. They are staged after the analysis write because callers read the
    # analysis's own result first (results[0] of a batch).
    if result.list_changes and result.owner is not None:
        # The owner's list changed: their next poll must not be answered 304. A document
        # without an owner is on nobody's list. A status change also moves the analysis
        # into or out of the owner's active set on the same marker.
        active = None if result.active is None else (result.analysis_id, result.active)
        bump_marker(writer, markers, result.owner, active=active)
    # ----------------------------------------------------------------------------------
    return result
