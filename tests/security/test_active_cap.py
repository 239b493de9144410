"""Issue 12, point 6: a per-user cap on queued-or-running analyses (429 with a reason)."""

from __future__ import annotations

import uuid

import httpx

from tests.rerun_api.conftest import firestore_client, start_rerun_api
from tests.rerun_api.support import apply_pubsub, video_of
from tests.support.auth import TestIssuer
from tests.support.processes import ManagedProcess


def body(user: str) -> dict[str, object]:
    return {
        "video_url": video_of(user),
        "dance_type": "salsa",
        "dancers": ["a"],
        "analysis_type": "solo",
    }


def test_a_user_at_the_cap_gets_429_until_one_finishes(
    firestore: ManagedProcess, pubsub: ManagedProcess, issuer: TestIssuer
) -> None:
    project = f"cap-{uuid.uuid4().hex[:10]}"
    apply_pubsub(project)
    api = start_rerun_api(project, issuer, MAX_ACTIVE_ANALYSES_PER_USER="2")
    db = firestore_client(project)
    try:
        with httpx.Client(base_url=api.url, timeout=15) as http:
            alice = issuer.headers("alice")
            created = [http.post("/analyses", json=body("alice"), headers=alice) for _ in range(2)]
            assert [r.status_code for r in created] == [201, 201]

            over = http.post("/analyses", json=body("alice"), headers=alice)
            assert over.status_code == 429
            error = over.json()["error"]
            assert error["code"] == "too_many_active"
            assert "2 analyses queued or running" in error["message"]
            assert int(over.headers["retry-after"]) > 0
            # A rerun is more work too.
            rerun = http.post(f"/analyses/{created[0].json()['id']}/rerun", headers=alice)
            assert rerun.status_code == 429

            bob = http.post("/analyses", json=body("bob"), headers=issuer.headers("bob"))
            assert bob.status_code == 201

            db.collection("analyses").document(created[0].json()["id"]).update({"status": "done"})
            again = http.post("/analyses", json=body("alice"), headers=alice)
            assert again.status_code == 201, again.text
    finally:
        db.close()
        api.stop()
