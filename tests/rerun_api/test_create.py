"""POST /analyses through real HTTP against a rerun-api process and the emulators."""

from __future__ import annotations

from typing import Any

import pytest

from tests.rerun_api.conftest import RerunApi
from tests.rerun_api.support import jobs_for, pull_jobs, read, video_of
from tests.support.contract import LIST_FIELDS


def body(user: str, **overrides: Any) -> dict[str, Any]:
    return {
        "video_url": video_of(user),
        "dance_type": "salsa",
        "dancers": ["lead", "follow"],
        "analysis_type": "couple",
        **overrides,
    }


def test_create_queues_the_analysis_and_publishes_its_job(api: RerunApi, user: str) -> None:
    response = api.http.post("/analyses", json=body(user), headers=api.headers(user))

    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == LIST_FIELDS
    assert created["status"] == "queued"
    assert created["processed"] is False
    assert created["dancers"] == ["lead", "follow"]
    assert response.headers["location"] == f"/analyses/{created['id']}"
    assert response.headers["x-request-id"]

    doc = read(api.db, created["id"])
    assert doc["user_id"] == user
    assert doc["generation"] == 1
    assert doc["status"] == "queued"
    assert doc["video_url"] == video_of(user)
    assert doc["publish_pending"] is False
    assert doc["created_at"] == doc["timestamp"] <= doc["updated_at"]

    messages = pull_jobs(api.project, expect=1)
    jobs = jobs_for(messages, created["id"])
    assert [(j.generation, j.requested_by) for j in jobs] == [(1, user)]
    ordering_keys = {key for job, _, key in messages if job.analysis_id == created["id"]}
    assert ordering_keys == {created["id"]}


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"video_url": "ftp://host/clip.mp4"}, "video_url"),
        ({"video_url": "file:///videos/clip.mp4"}, "video_url"),
        ({"video_url": "gs://"}, "video_url"),
        ({"video_url": "https://host/" + "a" * 2100}, "video_url"),
        ({"video_url": "https://host/a b.mp4"}, "video_url"),
        ({"analysis_type": "trio"}, "analysis_type"),
        ({"dance_type": ""}, "dance_type"),
        ({"dance_type": "x" * 101}, "dance_type"),
        ({"dancers": []}, "dancers"),
        ({"dancers": ["d"] * 11}, "dancers"),
        # Unicode category Cc (C0, DEL, C1) in any text field (issue 21).
        ({"dance_type": "sal\x00sa"}, "dance_type"),
        ({"dance_type": "salsa\x1b[31m"}, "dance_type"),
        ({"dance_type": "\x7f"}, "dance_type"),
        ({"dancers": ["ana", "b\x07en"]}, "dancers"),
        ({"dancers": "ana\u0085ben"}, "dancers"),
        ({"dancers": ["ana\nben"]}, "dancers"),
    ],
)
def test_create_rejects_bad_input_naming_the_field(
    api: RerunApi, user: str, overrides: dict[str, Any], param: str
) -> None:
    response = api.http.post("/analyses", json=body(user, **overrides), headers=api.headers(user))

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    # A field with alternatives names the alternative too, e.g. "dancers.list[...]".
    assert error["param"].split(".")[0] == param
    assert error["code"] == "invalid_argument"
    assert error["request_id"] == response.headers["x-request-id"]


def test_create_rejects_a_body_that_is_not_json(api: RerunApi, user: str) -> None:
    response = api.http.post(
        "/analyses",
        content=b"{not json",
        headers={**api.headers(user), "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_argument"


def test_create_ignores_a_user_id_in_the_body(api: RerunApi, user: str) -> None:
    response = api.http.post(
        "/analyses", json=body(user, user_id="someone-else"), headers=api.headers(user)
    )
    assert response.status_code == 201
    assert read(api.db, response.json()["id"])["user_id"] == user


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-jwt"},
        {"Authorization": "Basic dXNlcjpwdw=="},
    ],
)
def test_create_without_a_valid_token_is_401(api: RerunApi, headers: dict[str, str]) -> None:
    response = api.http.post("/analyses", json=body("nobody"), headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    assert "bearer" in response.headers["www-authenticate"].lower()


def test_tokens_for_another_audience_or_expired_are_401(api: RerunApi, user: str) -> None:
    for token in (
        api.issuer.token(user, audience="someone-else"),
        api.issuer.token(user, ttl_seconds=-3600),
    ):
        response = api.http.post(
            "/analyses", json=body(user), headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401, response.text


def test_request_id_is_echoed(api: RerunApi, user: str) -> None:
    response = api.http.post(
        "/analyses",
        json=body(user, analysis_type="solo", dancers="one dancer"),
        headers=api.headers(user, **{"X-Request-ID": "req-123"}),
    )
    assert response.status_code == 201
    assert response.headers["x-request-id"] == "req-123"
    assert response.json()["dancers"] == "one dancer"
