"""A per-user cap on queued-or-running analyses (429 with a reason) that holds under
concurrency, is released by every move out of queued/running, and is never held by work
nobody queued through the services."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
from google.cloud import firestore as gfs
from google.cloud.firestore_v1.base_query import FieldFilter

from flokraft_core.store.status_table import Move
from flokraft_core.store.write_path import stage_write
from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.processes import ManagedProcess
from tests.rerun_api.conftest import firestore_client, start_rerun_api
from tests.rerun_api.support import apply_pubsub, seed, video_of


def body(user: str) -> dict[str, object]:
    return {
        "video_url": video_of(user),
        "dance_type": "salsa",
        "dancers": ["a"],
        "analysis_type": "solo",
    }


def active_of(db: gfs.Client, user: str) -> list[str]:
    marker = db.collection("analysis_feeds").document(user).get().to_dict() or {}
    return list(marker.get("active", []))


def test_a_user_at_the_cap_gets_429_until_one_finishes(
    firestore: ManagedProcess, pubsub: ManagedProcess, issuer: TestIssuer
) -> None:
    project = f"cap-{uuid.uuid4().hex[:10]}"
    apply_pubsub(project)
    api = start_rerun_api(project, issuer, MAX_ACTIVE_ANALYSES_PER_USER="2")
    db = firestore_client(project)
    try:
        seed(db, "alice-finished", user="alice", status="done")
        with httpx.Client(base_url=api.url, timeout=15) as http:
            alice = issuer.headers("alice")
            created = [http.post("/analyses", json=body("alice"), headers=alice) for _ in range(2)]
            assert [r.status_code for r in created] == [201, 201]
            ids = [r.json()["id"] for r in created]
            assert sorted(active_of(db, "alice")) == sorted(ids)

            over = http.post("/analyses", json=body("alice"), headers=alice)
            assert over.status_code == 429
            error = over.json()["error"]
            assert error["code"] == "too_many_active"
            assert "2 analyses queued or running" in error["message"]
            assert int(over.headers["retry-after"]) > 0
            # A rerun of a finished analysis is more work too; one of a queued analysis
            # is refused as already queued (it holds its place already).
            assert http.post("/analyses/alice-finished/rerun", headers=alice).status_code == 429
            assert http.post(f"/analyses/{ids[0]}/rerun", headers=alice).status_code == 409

            bob = http.post("/analyses", json=body("bob"), headers=issuer.headers("bob"))
            assert bob.status_code == 201

            # A move out of queued through the one write path releases the place.
            ref = db.collection("analyses").document(ids[0])
            batch = db.batch()
            stage_write(
                batch,
                ref,
                Move.FAIL,
                {"error": "stopped by the test"},
                before=ref.get().to_dict(),
                markers=db.collection("analysis_feeds"),
            )
            batch.commit()
            assert active_of(db, "alice") == [ids[1]]
            again = http.post("/analyses", json=body("alice"), headers=alice)
            assert again.status_code == 201, again.text
    finally:
        db.close()
        api.stop()


def test_work_written_outside_the_services_never_holds_the_cap(
    firestore: ManagedProcess, pubsub: ManagedProcess, issuer: TestIssuer
) -> None:
    """The old backend's or the demo data's queued/running rows are not in the active set,
    and a place whose analysis was moved or deleted by hand is given back at the cap."""
    project = f"cap-{uuid.uuid4().hex[:10]}"
    apply_pubsub(project)
    api = start_rerun_api(project, issuer, MAX_ACTIVE_ANALYSES_PER_USER="2")
    db = firestore_client(project)
    try:
        for i in range(6):
            seed(db, f"carol-stuck-{i}", user="carol", status="queued" if i % 2 else "running")
        with httpx.Client(base_url=api.url, timeout=15) as http:
            carol = issuer.headers("carol")
            created = [http.post("/analyses", json=body("carol"), headers=carol) for _ in range(2)]
            assert [r.status_code for r in created] == [201, 201]
            assert http.post("/analyses", json=body("carol"), headers=carol).status_code == 429

            # By hand, outside stage_write: one finished, one deleted.
            db.collection("analyses").document(created[0].json()["id"]).update({"status": "done"})
            db.collection("analyses").document(created[1].json()["id"]).delete()

            again = http.post("/analyses", json=body("carol"), headers=carol)
            assert again.status_code == 201, again.text
            assert active_of(db, "carol") == [again.json()["id"]]
    finally:
        db.close()
        api.stop()


def test_concurrent_creates_never_overshoot_the_cap(
    firestore: ManagedProcess, pubsub: ManagedProcess, issuer: TestIssuer
) -> None:
    cap, concurrent, rounds = 5, 10, 3
    project = f"cap-{uuid.uuid4().hex[:10]}"
    apply_pubsub(project)
    api = start_rerun_api(project, issuer, MAX_ACTIVE_ANALYSES_PER_USER=str(cap))
    db = firestore_client(project)

    async def burst(user: str) -> Counter[int]:
        headers = issuer.headers(user)
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
            # Every request is sent before any answer is awaited.
            responses = await asyncio.gather(
                *(
                    http.post("/analyses", json=body(user), headers=headers)
                    for _ in range(concurrent)
                )
            )
        return Counter(r.status_code for r in responses)

    try:
        for round_ in range(rounds):
            user = f"burst-{round_}-{uuid.uuid4().hex[:6]}"
            statuses = asyncio.run(burst(user))
            documents = list(
                db.collection("analyses").where(filter=FieldFilter("user_id", "==", user)).stream()
            )
            assert statuses == Counter({201: cap, 429: concurrent - cap}), statuses
            assert len(documents) == cap
            assert sorted(active_of(db, user)) == sorted(d.id for d in documents)
    finally:
        db.close()
        api.stop()
