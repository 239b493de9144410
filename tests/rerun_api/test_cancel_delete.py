"""POST /analyses/{id}/cancel and DELETE /analyses/{id} through real HTTP against a
rerun-api process and the emulators: who may, which statuses, what is written (and what
it costs), and that the owner's change marker moves."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from google.cloud.firestore_v1.base_query import FieldFilter

from tests.rerun_api.conftest import RerunApi
from tests.rerun_api.support import jobs_for, pull_jobs, read, seed
from tests.support.polling import metric_value

CANCEL_ROUTE = "/analyses/{analysis_id}/cancel"
DELETE_ROUTE = "/analyses/{analysis_id}"


def new_id() -> str:
    return f"a-{uuid.uuid4().hex[:12]}"


def marker_version(api: RerunApi, user: str) -> int:
    snapshot = api.db.collection("analysis_feeds").document(user).get()
    return int((snapshot.to_dict() or {}).get("version", 0))


def exists(api: RerunApi, analysis_id: str) -> bool:
    return bool(api.db.collection("analyses").document(analysis_id).get().exists)


def reads(api: RerunApi, route: str) -> float:
    return metric_value(api.process.url, "firestore_documents_read_total", route=route)


@pytest.mark.parametrize("status", ["queued", "running"])
def test_cancel_of_active_work_ends_it_cancelled_and_moves_the_marker(
    api: RerunApi, user: str, status: str
) -> None:
    analysis_id = new_id()
    seed(
        api.db,
        analysis_id,
        user=user,
        status=status,
        generation=2,
        lease_owner="worker-1" if status == "running" else None,
        publish_pending=status == "queued",
    )
    before = marker_version(api, user)

    response = api.http.post(f"/analyses/{analysis_id}/cancel", headers=api.headers(user))

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["status"], body["generation"]) == (analysis_id, "cancelled", 2)
    assert body["cancelled_at"]
    doc = read(api.db, analysis_id)
    assert doc["status"] == "cancelled"
    assert doc["error"] == "cancelled by its owner"
    assert doc["lease_owner"] is None
    assert doc["lease_until"] is None
    assert doc["publish_pending"] is False
    assert doc["generation"] == 2
    assert marker_version(api, user) == before + 1

    # A repeated cancel answers the same and writes nothing.
    again = api.http.post(f"/analyses/{analysis_id}/cancel", headers=api.headers(user))
    assert again.status_code == 200
    assert again.json()["status"] == "cancelled"
    assert marker_version(api, user) == before + 1


@pytest.mark.parametrize("status", ["done", "failed", None])
def test_cancel_of_finished_work_is_409_with_its_status(
    api: RerunApi, user: str, status: str | None
) -> None:
    analysis_id = new_id()
    seed(api.db, analysis_id, user=user, status=status or "done")
    if status is None:  # the old backend's documents have no status
        api.db.collection("analyses").document(analysis_id).update({"status": None})

    response = api.http.post(f"/analyses/{analysis_id}/cancel", headers=api.headers(user))

    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "already_finished"
    assert error["status"] == status
    assert read(api.db, analysis_id)["status"] == status


def test_cancel_of_someone_elses_is_404_and_an_admin_may(api: RerunApi, user: str) -> None:
    analysis_id = new_id()
    seed(api.db, analysis_id, user="the-owner", status="running")

    theirs = api.http.post(f"/analyses/{analysis_id}/cancel", headers=api.headers(user))
    missing = api.http.post(f"/analyses/{new_id()}/cancel", headers=api.headers(user))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"
    assert read(api.db, analysis_id)["status"] == "running"

    admin = api.http.post(f"/analyses/{analysis_id}/cancel", headers=api.headers(user, admin=True))
    assert admin.status_code == 200, admin.text
    doc = read(api.db, analysis_id)
    assert (doc["status"], doc["error"]) == ("cancelled", "cancelled by an administrator")


def test_a_cancelled_analysis_may_be_rerun(api: RerunApi, user: str) -> None:
    analysis_id = new_id()
    seed(api.db, analysis_id, user=user, status="queued", generation=3)
    assert api.http.post(f"/analyses/{analysis_id}/cancel", headers=api.headers(user)).is_success

    rerun = api.http.post(f"/analyses/{analysis_id}/rerun", headers=api.headers(user))

    assert rerun.status_code == 202, rerun.text
    assert rerun.json()["generation"] == 4
    doc = read(api.db, analysis_id)
    assert (doc["status"], doc["error"]) == ("queued", None)
    assert [j.generation for j in jobs_for(pull_jobs(api.project, expect=1), analysis_id)] == [4]


def test_delete_is_204_then_404_and_moves_the_marker(api: RerunApi, user: str) -> None:
    analysis_id = new_id()
    seed(api.db, analysis_id, user=user, status="running", publish_pending=True)
    before = marker_version(api, user)

    first = api.http.delete(f"/analyses/{analysis_id}", headers=api.headers(user))

    assert first.status_code == 204, first.text
    assert first.content == b""
    # The outbox marker lived on the document: nothing is left for the reconciler.
    assert not exists(api, analysis_id)
    assert marker_version(api, user) == before + 1
    again = api.http.delete(f"/analyses/{analysis_id}", headers=api.headers(user))
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "not_found"
    assert marker_version(api, user) == before + 1


def test_delete_of_someone_elses_is_404_and_an_admin_may(api: RerunApi, user: str) -> None:
    analysis_id = new_id()
    seed(api.db, analysis_id, user="the-owner")

    theirs = api.http.delete(f"/analyses/{analysis_id}", headers=api.headers(user))
    missing = api.http.delete(f"/analyses/{new_id()}", headers=api.headers(user))
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["error"]["code"] == missing.json()["error"]["code"] == "not_found"
    assert exists(api, analysis_id)

    admin = api.http.delete(f"/analyses/{analysis_id}", headers=api.headers(user, admin=True))
    assert admin.status_code == 204
    assert not exists(api, analysis_id)


def test_a_create_retried_after_its_delete_does_not_bring_it_back(api: RerunApi, user: str) -> None:
    body: dict[str, Any] = {
        "video_url": f"gs://flokraft-videos/{user}/clip.mp4",
        "dance_type": "salsa",
        "dancers": ["a", "b"],
        "analysis_type": "couple",
    }
    headers = api.headers(user, **{"Idempotency-Key": f"k-{uuid.uuid4().hex}"})
    created = api.http.post("/analyses", json=body, headers=headers)
    assert created.status_code == 201, created.text
    analysis_id = created.json()["id"]
    assert api.http.delete(f"/analyses/{analysis_id}", headers=api.headers(user)).status_code == 204

    retried = api.http.post("/analyses", json=body, headers=headers)

    # The key's record stays until its TTL: the retry is told what the first request did,
    # and no analysis is created again.
    assert retried.status_code == 201
    assert retried.json()["id"] == analysis_id
    assert not exists(api, analysis_id)
    listed = api.db.collection("analyses").where(filter=FieldFilter("user_id", "==", user)).get()
    assert listed == []


def test_cancel_and_delete_cost_one_read_each(api: RerunApi, user: str) -> None:
    analysis_id = new_id()
    seed(api.db, analysis_id, user=user, status="running")
    cancel_before, delete_before = reads(api, CANCEL_ROUTE), reads(api, DELETE_ROUTE)

    assert api.http.post(f"/analyses/{analysis_id}/cancel", headers=api.headers(user)).is_success
    assert api.http.delete(f"/analyses/{analysis_id}", headers=api.headers(user)).is_success

    # One document read in each transaction; each commits two writes (the analysis and
    # its owner's change marker).
    assert reads(api, CANCEL_ROUTE) - cancel_before == 1
    assert reads(api, DELETE_ROUTE) - delete_before == 1


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/analyses/{}/cancel"), ("DELETE", "/analyses/{}")]
)
def test_without_a_token_is_401_and_bad_ids_are_422(api: RerunApi, method: str, path: str) -> None:
    response = api.http.request(method, path.format(new_id()))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    bad = api.http.request(method, path.format("semi;colon"), headers=api.headers("someone"))
    assert bad.status_code == 422
    assert bad.json()["error"]["param"] == "analysis_id"
