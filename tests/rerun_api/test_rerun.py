"""POST /analyses/{id}/rerun through real HTTP against a rerun-api process and the
emulators: ownership, the status rule, the transaction's writes and the published job."""

from __future__ import annotations

import pytest

from analyzer.job_store import AnalysisJobStore, ClaimOutcome
from tests.rerun_api.conftest import RerunApi
from tests.rerun_api.support import jobs_for, new_id, pull_jobs, read, seed, seed_in_progress


@pytest.mark.parametrize("status", ["done", "failed"])
def test_rerun_queues_a_new_generation_and_publishes_it(
    api: RerunApi, user: str, status: str
) -> None:
    analysis_id = new_id()
    seed(api.db, analysis_id, user=user, status=status, generation=3)

    response = api.http.post(f"/analyses/{analysis_id}/rerun", headers=api.headers(user))

    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["id"] == analysis_id
    assert accepted["status"] == "queued"
    assert accepted["generation"] == 4
    assert accepted["published"] is True
    doc = read(api.db, analysis_id)
    assert doc["generation"] == 4
    assert doc["status"] == "queued"
    assert doc["progress"] == 0
    assert doc["error"] is None
    assert doc["attempts"] == 0
    assert doc["publish_pending"] is False
    assert doc["updated_at"] > doc["created_at"]
    # The report stays until the new run replaces it.
    assert doc["text"] == "report"

    messages = pull_jobs(api.project, expect=1)
    assert [j.generation for j in jobs_for(messages, analysis_id)] == [4]
    assert {k for j, _, k in messages if j.analysis_id == analysis_id} == {analysis_id}
    assert all(a["trace_id"] for j, a, _ in messages if j.analysis_id == analysis_id)


@pytest.mark.parametrize("status", ["queued", "running"])
def test_rerun_of_a_busy_analysis_is_409_with_its_status(
    api: RerunApi, user: str, status: str
) -> None:
    analysis_id = new_id()
    seed(api.db, analysis_id, user=user, status=status, generation=2)

    response = api.http.post(f"/analyses/{analysis_id}/rerun", headers=api.headers(user))

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "already_queued"
    assert error["status"] == status
    assert error["generation"] == 2
    assert read(api.db, analysis_id)["generation"] == 2
    assert jobs_for(pull_jobs(api.project, wait_seconds=1.5), analysis_id) == []


def test_double_click_queues_once(api: RerunApi, user: str) -> None:
    analysis_id = new_id()
    seed(api.db, analysis_id, user=user)

    first = api.http.post(f"/analyses/{analysis_id}/rerun", headers=api.headers(user))
    second = api.http.post(f"/analyses/{analysis_id}/rerun", headers=api.headers(user))

    assert (first.status_code, second.status_code) == (202, 409)
    assert second.json()["error"]["status"] == "queued"
    assert read(api.db, analysis_id)["generation"] == 2
    assert [j.generation for j in jobs_for(pull_jobs(api.project), analysis_id)] == [2]


def test_someone_elses_analysis_is_404_like_a_missing_one(api: RerunApi, user: str) -> None:
    analysis_id = new_id()
    seed(api.db, analysis_id, user="the-owner")

    theirs = api.http.post(f"/analyses/{analysis_id}/rerun", headers=api.headers(user))
    missing = api.http.post(f"/analyses/{new_id()}/rerun", headers=api.headers(user))

    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"
    assert read(api.db, analysis_id)["generation"] == 1


def test_admin_may_rerun_anyones_analysis(api: RerunApi, user: str) -> None:
    analysis_id = new_id()
    seed(api.db, analysis_id, user="the-owner")

    response = api.http.post(
        f"/analyses/{analysis_id}/rerun", headers=api.headers(user, admin=True)
    )

    assert response.status_code == 202
    doc = read(api.db, analysis_id)
    assert (doc["generation"], doc["user_id"], doc["requested_by"]) == (2, "the-owner", user)
    jobs = jobs_for(pull_jobs(api.project, expect=1), analysis_id)
    assert [(j.generation, j.requested_by) for j in jobs] == [(2, user)]


def test_old_documents_without_bookkeeping_can_be_rerun(api: RerunApi, user: str) -> None:
    analysis_id = new_id()
    api.db.collection("analyses").document(analysis_id).set(
        {"user_id": user, "timestamp": "2023-05-01T10:00:00Z", "processed": True}
    )

    response = api.http.post(f"/analyses/{analysis_id}/rerun", headers=api.headers(user))

    assert response.status_code == 202, response.text
    assert response.json()["generation"] == 2
    assert read(api.db, analysis_id)["status"] == "queued"


@pytest.mark.parametrize("bad_id", ["has%20space", "x" * 129, "semi;colon"])
def test_malformed_ids_are_422_naming_the_id(api: RerunApi, user: str, bad_id: str) -> None:
    response = api.http.post(f"/analyses/{bad_id}/rerun", headers=api.headers(user))
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "analysis_id"


def test_rerun_without_a_token_is_401(api: RerunApi) -> None:
    response = api.http.post(f"/analyses/{new_id()}/rerun")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"


def test_ids_with_dots_are_accepted_like_query_api_accepts_them(api: RerunApi, user: str) -> None:
    # Firestore accepts dots in ids, and so does GET /analyses/{id}: a rerun must too.
    analysis_id = f"{new_id()}.v2"
    seed(api.db, analysis_id, user=user)
    response = api.http.post(f"/analyses/{analysis_id}/rerun", headers=api.headers(user))
    assert response.status_code == 202, response.text
    missing = api.http.post("/analyses/no.such.id/rerun", headers=api.headers(user))
    assert missing.status_code == 404


@pytest.mark.parametrize("reserved", ["__x__", "__reserved__"])
def test_ids_firestore_reserves_are_422_naming_the_id(
    api: RerunApi, user: str, reserved: str
) -> None:
    response = api.http.post(f"/analyses/{reserved}/rerun", headers=api.headers(user))
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == "analysis_id"


@pytest.mark.parametrize("status", ["queued", "running"])
def test_an_admins_rerun_of_stuck_work_queues_a_new_generation_that_fences_the_old(
    api: RerunApi, user: str, status: str
) -> None:
    analysis_id = new_id()
    seed_in_progress(api.db, analysis_id, user="the-owner", status=status, generation=2)
    # The owner gets 409 for work in progress ...
    owner = api.http.post(f"/analyses/{analysis_id}/rerun", headers=api.headers("the-owner"))
    assert owner.status_code == 409
    assert owner.json()["error"]["code"] == "already_queued"

    # ... an admin restarts it.
    response = api.http.post(
        f"/analyses/{analysis_id}/rerun", headers=api.headers(user, admin=True)
    )

    assert response.status_code == 202, response.text
    assert (response.json()["status"], response.json()["generation"]) == ("queued", 3)
    doc = read(api.db, analysis_id)
    assert (doc["status"], doc["generation"], doc["requested_by"]) == ("queued", 3, user)
    assert (doc["lease_owner"], doc["lease_until"], doc["attempts"]) == (None, None, 0)
    assert [j.generation for j in jobs_for(pull_jobs(api.project, expect=1), analysis_id)] == [3]

    # The old run (generation 2) can write nothing any more: its lease renewal is refused
    # (so its worker stops the child), and so are its result, retry and failure.
    old_worker = AnalysisJobStore(
        api.db,
        "analyses",
        markers_collection="analysis_feeds",
        owner="worker-1",
        timeout=5,
        lease_seconds=30,
    )
    assert old_worker.write_progress(analysis_id, 2, 0.9) is False
    assert old_worker.complete(analysis_id, 2, metrics={"total_score": 1.0}, text="old") is False
    assert old_worker.record_failed_attempt(analysis_id, 2, "old") is False
    assert old_worker.mark_failed(analysis_id, 2, "old") is False
    assert old_worker.claim(analysis_id, 2).outcome is ClaimOutcome.STALE
    after = read(api.db, analysis_id)
    assert (after["status"], after["generation"], after.get("text")) == ("queued", 3, "report")
