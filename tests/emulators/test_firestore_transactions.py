"""Transactions and array transforms on the emulator behave as in real Firestore: two
transactions that read a document and write it are serialised (the later commit is
aborted and the client retries it), a commit lands whole or not at all, a last-update-time
precondition is checked, and ArrayUnion/ArrayRemove work on a missing field. The active
cap (flokraft_core.store.change_markers' active set) and the idempotent create rely on them; the
package let conflicting transactions both commit, so 10 concurrent creates passed a cap
of 5."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.cloud import firestore as gfs

from flokraft_devstack.processes import ManagedProcess


def test_concurrent_read_modify_write_transactions_lose_no_update(
    firestore: ManagedProcess, project_id: str
) -> None:
    writers = 12

    async def main() -> tuple[int, int]:
        db = gfs.AsyncClient(project=project_id)
        ref = db.collection("counters").document("c")
        await ref.set({"n": 0})
        attempts = 0
        started = asyncio.Event()

        async def bump(transaction: gfs.AsyncTransaction) -> None:
            nonlocal attempts
            attempts += 1
            snapshot = await ref.get(transaction=transaction)
            # Every writer reads before any of them commits: a lost update if unchecked.
            await started.wait()
            transaction.update(ref, {"n": (snapshot.to_dict() or {})["n"] + 1})

        async def one() -> None:
            await gfs.async_transactional(bump)(db.transaction(max_attempts=writers + 1))

        tasks = [asyncio.create_task(one()) for _ in range(writers)]
        await asyncio.sleep(0.5)
        started.set()
        await asyncio.gather(*tasks)
        final = ((await ref.get()).to_dict() or {})["n"]
        db.close()
        return final, attempts

    final, attempts = asyncio.run(main())

    assert final == writers
    assert attempts > writers  # conflicts were detected and retried


def test_a_commit_with_a_failing_precondition_applies_none_of_its_writes(
    firestore: ManagedProcess, project_id: str
) -> None:
    db = gfs.Client(project=project_id)
    things = db.collection("things")
    things.document("exists").set({"n": 1})

    batch = db.batch()
    batch.set(things.document("first"), {"n": 1})
    batch.update(things.document("exists"), {"n": 2})
    batch.create(things.document("exists"), {"n": 3})
    with pytest.raises(gexc.AlreadyExists):
        batch.commit()

    assert not things.document("first").get().exists
    assert (things.document("exists").get().to_dict() or {})["n"] == 1


def test_a_last_update_time_precondition_is_checked(
    firestore: ManagedProcess, project_id: str
) -> None:
    db = gfs.Client(project=project_id)
    ref = db.collection("things").document("versioned")
    written = ref.set({"n": 1})
    ref.update({"n": 2})

    with pytest.raises(gexc.FailedPrecondition):
        ref.update({"n": 3}, option=db.write_option(last_update_time=written.update_time))

    current: Any = ref.get()
    assert (current.to_dict() or {})["n"] == 2
    ref.update({"n": 4}, option=db.write_option(last_update_time=current.update_time))
    assert (ref.get().to_dict() or {})["n"] == 4


def test_array_union_and_remove_treat_a_missing_field_as_empty(
    firestore: ManagedProcess, project_id: str
) -> None:
    # The per-user active set starts this way: the first union on a marker without one.
    db = gfs.Client(project=project_id)
    ref = db.collection("things").document("arrays")
    ref.set({"version": gfs.Increment(1), "active": gfs.ArrayUnion(["a", "b"])}, merge=True)
    ref.set({"active": gfs.ArrayUnion(["b", "c"])}, merge=True)
    ref.set({"active": gfs.ArrayRemove(["a", "absent"])}, merge=True)
    ref.set({"other": gfs.ArrayRemove(["x"])}, merge=True)

    assert ref.get().to_dict() == {"version": 1, "active": ["b", "c"], "other": []}
