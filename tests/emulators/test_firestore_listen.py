"""Query listeners on the emulator get what real Firestore sends them: the documents that
changed (added, modified, removed), not every matching document again on every write. The
change feed and its benchmark rely on it: with the package's own listener, every write
made the client re-process all matching documents, and the feed fell minutes behind at 10
writes a second over a few hundred markers."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from google.cloud import firestore as gfs
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.watch import Watch

from flokraft_devstack.processes import ManagedProcess

DOCUMENTS = 300
WRITES = 20


def test_a_query_listener_receives_only_what_changed(
    firestore: ManagedProcess, project_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the server sends, counted where the client receives each Listen response.
    received: list[str] = []
    receive = Watch.on_snapshot

    def counting(self: Watch, proto: Any) -> None:
        which = proto._pb.WhichOneof("response_type")
        if which in ("document_change", "document_delete", "document_remove"):
            received.append(which)
        receive(self, proto)

    monkeypatch.setattr(Watch, "on_snapshot", counting)

    db = gfs.Client(project=project_id)
    ref = db.collection("markers")
    batch = db.batch()
    for i in range(DOCUMENTS):
        batch.set(ref.document(f"m{i}"), {"live": True, "v": 0})
    batch.commit()
    heard: dict[tuple[str, str], int] = {}
    snapshots = threading.Event()

    def on_snapshot(docs: list[Any], changes: list[Any], read_time: Any) -> None:
        for change in changes:
            key = (change.type.name, change.document.id)
            heard[key] = heard.get(key, 0) + 1
        snapshots.set()

    watch = ref.where(filter=FieldFilter("live", "==", True)).on_snapshot(on_snapshot)
    try:
        assert snapshots.wait(30)
        assert len([k for k in heard if k[0] == "ADDED"]) == DOCUMENTS
        assert len(received) == DOCUMENTS
        for i in range(WRITES):
            ref.document(f"m{i * 7}").update({"v": 1})
        ref.document("m299").update({"live": False})  # leaves the result
        ref.document("new").set({"live": True, "v": 0})  # enters it
        deadline = time.monotonic() + 15
        while ("ADDED", "new") not in heard and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        assert len([k for k in heard if k[0] == "MODIFIED"]) == WRITES
        assert ("REMOVED", "m299") in heard
        assert ("ADDED", "new") in heard
        # One message per change (the package sent all 300 documents per write).
        assert len(received) - DOCUMENTS == WRITES + 2
    finally:
        watch.unsubscribe()
        db.close()
