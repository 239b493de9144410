"""Writes on the emulator replace and remove fields as real Firestore does: a set without
merge replaces the whole document, and DELETE_FIELD (in an update or a merge set) removes
the field. rerun-api's idempotency tombstones (a merge set that removes the stored
answer) rely on it; the package merged every write into the stored document."""

from __future__ import annotations

from google.cloud import firestore as gfs

from flokraft_devstack.processes import ManagedProcess


def test_set_replaces_and_delete_field_removes(firestore: ManagedProcess, project_id: str) -> None:
    db = gfs.Client(project=project_id)
    try:
        ref = db.collection("writes").document("w")
        ref.set({"a": 1, "b": {"c": 2}, "d": 3})

        ref.set({"a": 5})
        assert ref.get().to_dict() == {"a": 5}

        ref.set({"a": 1, "b": 2, "d": 3, "e": 4})
        ref.update({"b": gfs.DELETE_FIELD, "a": 6})
        assert ref.get().to_dict() == {"a": 6, "d": 3, "e": 4}

        ref.set({"state": "gone", "d": gfs.DELETE_FIELD, "t": gfs.SERVER_TIMESTAMP}, merge=True)
        after = ref.get().to_dict() or {}
        assert set(after) == {"a", "e", "state", "t"}
        assert after["state"] == "gone"

        # A merge set on a missing document creates it with what it carries.
        missing = db.collection("writes").document("new")
        missing.set({"state": "gone", "x": gfs.DELETE_FIELD}, merge=True)
        assert missing.get().to_dict() == {"state": "gone"}
    finally:
        db.close()
