"""POST /analyses/{id}/cancel, POST /analyses/{id}/fail (admins) and DELETE
/analyses/{id} through real HTTP against a rerun-api process and the emulators: who may,
which statuses, what is written (and what it costs), that the owner's change marker moves,
and what becomes of a deleted analysis's Idempotency-Key records and outbox marker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from google.cloud.firestore_v1.base_query import FieldFilter

from flokraft_devstack.probes import metric_value
from tests.rerun_api.conftest import RerunApi
from tests.rerun_api.support import jobs_for, new_id, pull_jobs, read, seed, seed_in_progress

CANCEL_ROUTE = "/analyses/{analysis_id}/cancel"
DELETE_ROUTE = "/analyses/{analysis_id}"
FAIL_ROUTE = "/analyses/{analysis_id}/fail"


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
    seed_in_progress(
        api.db,
        analysis_id,
        user=user,
        status=status,
        generation=2,
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


def create_body(user: str) -> dict[str, Any]:
    return {
        "video_url": f"gs://flokraft-videos/{user}/clip.mp4",
        "dance_type": "salsa",
        "dancers": ["a", "b"],
        "analysis_type": "couple",
    }


def records(api: RerunApi) -> dict[str, dict[str, Any]]:
    return {
        snapshot.id: snapshot.to_dict() or {}
        for snapshot in api.db.collection("idempotency_keys").stream()
    }


def test_a_create_retried_after_its_delete_answers_410_and_never_brings_it_back(
    api: RerunApi, user: str
) -> None:
    body = create_body(user)
    headers = api.headers(user, **{"Idempotency-Key": f"k-{uuid.uuid4().hex}"})
    created = api.http.post("/analyses", json=body, headers=headers)
    assert created.status_code == 201, created.text
    analysis_id = created.json()["id"]
    record_ids = read(api.db, analysis_id)["idempotency_records"]
    assert len(record_ids) == 1
    assert api.http.delete(f"/analyses/{analysis_id}", headers=api.headers(user)).status_code == 204

    # The key's stored answer became a tombstone in the delete's transaction: nothing of
    # the deleted analysis is left in it, and it has no expiry for the TTL policy.
    tombstone = records(api)[record_ids[0]]
    assert tombstone["state"] == "deleted"
    assert set(tombstone) == {"state", "created_at"}

    for retry_body in (body, {**body, "dance_type": "tango"}):
        retried = api.http.post("/analyses", json=retry_body, headers=headers)
        assert retried.status_code == 410, retried.text
        error = retried.json()["error"]
        assert (error["code"], error["param"]) == ("analysis_deleted", "Idempotency-Key")
        assert analysis_id not in retried.text
    assert not exists(api, analysis_id)
    listed = api.db.collection("analyses").where(filter=FieldFilter("user_id", "==", user)).get()
    assert listed == []

    # A new key starts a new analysis as usual.
    fresh = api.http.post(
        "/analyses", json=body, headers=api.headers(user, **{"Idempotency-Key": "another"})
    )
    assert fresh.status_code == 201
    assert fresh.json()["id"] != analysis_id


def test_a_keyed_rerun_retried_after_the_delete_answers_410(api: RerunApi, user: str) -> None:
    analysis_id = new_id()
    seed(api.db, analysis_id, user=user)
    headers = api.headers(user, **{"Idempotency-Key": f"k-{uuid.uuid4().hex}"})
    path = f"/analyses/{analysis_id}/rerun"
    assert api.http.post(path, headers=headers).status_code == 202
    assert api.http.post(path, headers=headers).headers["Idempotent-Replayed"] == "true"
    assert api.http.delete(f"/analyses/{analysis_id}", headers=api.headers(user)).status_code == 204

    retried = api.http.post(path, headers=headers)

    assert retried.status_code == 410, retried.text
    assert retried.json()["error"]["code"] == "analysis_deleted"
    assert not exists(api, analysis_id)


def test_a_deleted_analysis_with_a_publish_pending_is_never_published(
    api: RerunApi, user: str
) -> None:
    # Its outbox marker is a field of the document (older than OUTBOX_MAX_AGE_SECONDS, so
    # the reconciler, scanning every second, would publish it): the delete takes it along.
    # A publish already under way when the delete lands reaches the analyzer, which finds
    # no document and acks the message (ClaimOutcome.NOT_FOUND).
    analysis_id = new_id()
    seed(api.db, analysis_id, user=user, status="queued", publish_pending=True)
    api.db.collection("analyses").document(analysis_id).update({"updated_at": datetime.now(UTC)})
    assert api.http.delete(f"/analyses/{analysis_id}", headers=api.headers(user)).status_code == 204

    assert jobs_for(pull_jobs(api.project, wait_seconds=4), analysis_id) == []
    assert not exists(api, analysis_id)


@pytest.mark.parametrize("status", ["queued", "running"])
def test_an_admin_fails_stuck_work_with_a_reason_and_it_leaves_the_cap(
    api: RerunApi, user: str, status: str
) -> None:
    analysis_id = new_id()
    seed_in_progress(api.db, analysis_id, user="the-owner", status=status, generation=4)
    feeds = api.db.collection("analysis_feeds")
    feeds.document("the-owner").set({"version": 1, "active": [analysis_id]}, merge=True)
    reason = "the worker that ran it is gone; rerun it to try again"

    owner = api.http.post(
        FAIL_ROUTE.format(analysis_id=analysis_id),
        json={"reason": reason},
        headers=api.headers("the-owner"),
    )
    assert owner.status_code == 403
    assert owner.json()["error"]["code"] == "permission_denied"
    assert read(api.db, analysis_id)["status"] == status

    response = api.http.post(
        FAIL_ROUTE.format(analysis_id=analysis_id),
        json={"reason": reason},
        headers=api.headers(user, admin=True),
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["status"], body["generation"]) == (analysis_id, "failed", 4)
    assert (body["error"], bool(body["failed_at"])) == (reason, True)
    doc = read(api.db, analysis_id)
    assert (doc["status"], doc["error"], doc["generation"]) == ("failed", reason, 4)
    assert (doc["lease_owner"], doc["publish_pending"]) == (None, False)
    marker = feeds.document("the-owner").get().to_dict() or {}
    assert analysis_id not in marker["active"]
    assert marker["version"] >= 2

    # A repeat answers the same without a write; the owner may rerun it.
    version = marker_version(api, "the-owner")
    again = api.http.post(
        FAIL_ROUTE.format(analysis_id=analysis_id),
        json={"reason": "another"},
        headers=api.headers(user, admin=True),
    )
    assert (again.status_code, again.json()["error"]) == (200, reason)
    assert marker_version(api, "the-owner") == version
    rerun = api.http.post(f"/analyses/{analysis_id}/rerun", headers=api.headers("the-owner"))
    assert rerun.status_code == 202


def test_an_admins_fail_of_finished_missing_or_bad_requests(api: RerunApi, user: str) -> None:
    admin = api.headers(user, admin=True)
    done = new_id()
    seed(api.db, done, user="the-owner", status="done")

    finished = api.http.post(
        FAIL_ROUTE.format(analysis_id=done), json={"reason": "x"}, headers=admin
    )
    assert finished.status_code == 409
    assert (finished.json()["error"]["code"], finished.json()["error"]["status"]) == (
        "already_finished",
        "done",
    )
    missing = api.http.post(
        FAIL_ROUTE.format(analysis_id=new_id()), json={"reason": "x"}, headers=admin
    )
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    for bad in ({}, {"reason": ""}, {"reason": "x" * 501}, {"reason": "x", "extra": 1}):
        refused = api.http.post(FAIL_ROUTE.format(analysis_id=done), json=bad, headers=admin)
        assert refused.status_code == 422, bad
    assert read(api.db, done)["status"] == "done"


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
    ("method", "path"),
    [("POST", "/analyses/{}/cancel"), ("DELETE", "/analyses/{}"), ("POST", "/analyses/{}/fail")],
)
def test_without_a_token_is_401_and_bad_ids_are_422(api: RerunApi, method: str, path: str) -> None:
    response = api.http.request(method, path.format(new_id()))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    # An admin's token: the fail route answers 403 to anyone else before it looks at the id.
    admin = api.headers("someone", admin=True)
    bad = api.http.request(method, path.format("semi;colon"), headers=admin, json={"reason": "x"})
    assert bad.status_code == 422
    assert bad.json()["error"]["param"] == "analysis_id"
