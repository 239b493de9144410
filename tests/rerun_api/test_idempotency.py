"""Idempotency-Key on both POSTs: the first answer is replayed; the record lives in
Firestore (so every replica sees it) and is written in the command's own transaction; a
create with a key writes an id derived from (user, key), so it can never make two."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from google.cloud.firestore_v1.base_query import FieldFilter

from rerun_api.idempotency import analysis_id_for, body_hash, record_id
from tests.rerun_api.conftest import RerunApi
from tests.rerun_api.support import jobs_for, pull_jobs, read, seed, video_of

BODY = {
    "dance_type": "tango",
    "dancers": ["a", "b"],
    "analysis_type": "couple",
}


def body_for(user: str) -> dict[str, object]:
    return {"video_url": video_of(user), **BODY}


def key() -> str:
    return f"key-{uuid.uuid4().hex}"


def created_by(api: RerunApi, user: str) -> list[str]:
    query = api.db.collection("analyses").where(filter=FieldFilter("user_id", "==", user))
    return [snapshot.id for snapshot in query.stream()]


def test_same_key_same_answer_for_create(api: RerunApi, user: str) -> None:
    headers = api.headers(user, **{"Idempotency-Key": key()})

    first = api.http.post("/analyses", json=body_for(user), headers=headers)
    again = api.http.post(
        "/analyses", json=dict(reversed(list(body_for(user).items()))), headers=headers
    )

    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert first.headers["location"] == again.headers["location"]
    assert again.headers["idempotent-replayed"] == "true"
    assert created_by(api, user) == [first.json()["id"]]
    assert len(jobs_for(pull_jobs(api.project, wait_seconds=2), first.json()["id"])) == 1


def test_different_keys_create_twice(api: RerunApi, user: str) -> None:
    for _ in range(2):
        response = api.http.post(
            "/analyses",
            json=body_for(user),
            headers=api.headers(user, **{"Idempotency-Key": key()}),
        )
        assert response.status_code == 201
    assert len(created_by(api, user)) == 2


def test_keys_are_per_user(api: RerunApi, user: str) -> None:
    shared = key()
    mine = api.http.post(
        "/analyses", json=body_for(user), headers=api.headers(user, **{"Idempotency-Key": shared})
    )
    theirs = api.http.post(
        "/analyses",
        json=body_for(user + "-b"),
        headers=api.headers(user + "-b", **{"Idempotency-Key": shared}),
    )
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]


def test_same_key_with_another_body_is_422(api: RerunApi, user: str) -> None:
    headers = api.headers(user, **{"Idempotency-Key": key()})
    assert api.http.post("/analyses", json=body_for(user), headers=headers).status_code == 201

    response = api.http.post(
        "/analyses", json={**body_for(user), "dance_type": "waltz"}, headers=headers
    )

    assert response.status_code == 422
    assert response.json()["error"]["param"] == "Idempotency-Key"
    assert len(created_by(api, user)) == 1


def test_same_key_same_answer_for_rerun(api: RerunApi, user: str) -> None:
    analysis_id = f"a-{uuid.uuid4().hex[:12]}"
    seed(api.db, analysis_id, user=user)
    headers = api.headers(user, **{"Idempotency-Key": key()})

    first = api.http.post(f"/analyses/{analysis_id}/rerun", headers=headers)
    # Without the key this would be 409 (already queued): the key replays the 202.
    again = api.http.post(f"/analyses/{analysis_id}/rerun", headers=headers)

    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    assert read(api.db, analysis_id)["generation"] == 2
    assert [j.generation for j in jobs_for(pull_jobs(api.project), analysis_id)] == [2]


def test_an_error_is_not_stored_so_a_retry_runs_again(api: RerunApi, user: str) -> None:
    analysis_id = f"a-{uuid.uuid4().hex[:12]}"
    headers = api.headers(user, **{"Idempotency-Key": key()})

    assert api.http.post(f"/analyses/{analysis_id}/rerun", headers=headers).status_code == 404
    seed(api.db, analysis_id, user=user)
    assert api.http.post(f"/analyses/{analysis_id}/rerun", headers=headers).status_code == 202


def test_a_created_analysis_is_the_answer_when_its_record_is_gone(api: RerunApi, user: str) -> None:
    """The record expired (and its TTL deleted it), or a commit landed without it: the
    derived id still finds the analysis, so a retry answers from it and never creates."""
    idem_key = key()
    headers = api.headers(user, **{"Idempotency-Key": idem_key})
    first = api.http.post("/analyses", json=body_for(user), headers=headers)
    assert first.status_code == 201
    assert first.json()["id"] == analysis_id_for(user, idem_key)
    api.db.collection("idempotency_keys").document(
        record_id(user, "POST", "/analyses", idem_key)
    ).delete()

    again = api.http.post("/analyses", json=body_for(user), headers=headers)
    other = api.http.post(
        "/analyses", json={**body_for(user), "dance_type": "waltz"}, headers=headers
    )

    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"]
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert created_by(api, user) == [first.json()["id"]]


def test_concurrent_requests_with_one_key_create_once(api: RerunApi, user: str) -> None:
    headers = api.headers(user, **{"Idempotency-Key": key()})

    with ThreadPoolExecutor(8) as pool:
        responses = list(
            pool.map(
                lambda _: api.http.post("/analyses", json=body_for(user), headers=headers),
                range(8),
            )
        )

    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 7
    assert created_by(api, user) == [responses[0].json()["id"]]


def test_a_replayed_rerun_tells_whether_the_job_was_published(api: RerunApi, user: str) -> None:
    analysis_id = f"a-{uuid.uuid4().hex[:12]}"
    seed(api.db, analysis_id, user=user)
    headers = api.headers(user, **{"Idempotency-Key": key()})

    first = api.http.post(f"/analyses/{analysis_id}/rerun", headers=headers)
    again = api.http.post(f"/analyses/{analysis_id}/rerun", headers=headers)

    assert first.json()["published"] is True
    assert again.json() == first.json()


def test_a_request_in_flight_with_the_same_key_is_409(api: RerunApi, user: str) -> None:
    # An earlier release of the service claimed keys before the work: its record is in
    # flight, its lock still running, so the work may still land.
    idem_key = key()
    path = "/analyses"
    now = datetime.now(UTC)
    api.db.collection("idempotency_keys").document(record_id(user, "POST", path, idem_key)).set(
        {
            "state": "in_flight",
            "request_hash": body_hash(body_for(user)),
            "created_at": now,
            "expires_at": now + timedelta(hours=24),
            "lock_until": now + timedelta(minutes=5),
        }
    )

    response = api.http.post(
        path, json=body_for(user), headers=api.headers(user, **{"Idempotency-Key": idem_key})
    )

    assert response.status_code == 409
    assert response.json()["error"]["param"] == "Idempotency-Key"
    assert created_by(api, user) == []


def test_an_expired_key_is_taken_over(api: RerunApi, user: str) -> None:
    idem_key = key()
    record = record_id(user, "POST", "/analyses", idem_key)
    past = datetime.now(UTC) - timedelta(days=2)
    api.db.collection("idempotency_keys").document(record).set(
        {
            "state": "completed",
            "request_hash": "old",
            "created_at": past,
            "expires_at": past + timedelta(hours=24),
            "lock_until": past,
            "status": 201,
            "body": {"id": "old"},
            "headers": {},
        }
    )

    response = api.http.post(
        "/analyses", json=body_for(user), headers=api.headers(user, **{"Idempotency-Key": idem_key})
    )

    assert response.status_code == 201
    assert response.json()["id"] != "old"


@pytest.mark.parametrize("bad", ["x" * 256, "tab\there", "ümlaut".encode()])
def test_invalid_keys_are_422(api: RerunApi, user: str, bad: str | bytes) -> None:
    response = api.http.post(
        "/analyses",
        json=body_for(user),
        headers=[("Authorization", api.headers(user)["Authorization"]), ("Idempotency-Key", bad)],
    )
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "Idempotency-Key"
    assert created_by(api, user) == []
