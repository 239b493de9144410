"""CORS on both APIs, over real HTTP against the real processes: what the browser checks
before it hands an answer to the frontend's script."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
from google.cloud import firestore as gfirestore

from flokraft_core.settings import HttpServiceSettings
from flokraft_core.web.cors import FrontendCORSMiddleware
from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.processes import ManagedProcess, free_port
from flokraft_devstack.stack import StackSettings, shared_env
from tests.browser.support import VIDEO_ENV, cors_env, video_url
from tests.query_api.conftest import start_query_api
from tests.rerun_api.conftest import start_rerun_api
from tests.rerun_api.support import apply_pubsub, seed

FRONTEND = "https://app.flokraft.test"
PREVIEW_PATTERN = r"https://flokraft--pr-[0-9]+\.web\.app"
PREVIEW = "https://flokraft--pr-42.web.app"
STRANGER = "https://evil.example"
LIMIT = 5  # per user and minute on both APIs, so a 429 is cheap to provoke

EXPOSED = {"etag", "link", "x-next-page-token", "retry-after", "location", "x-request-id"}
ASKED_HEADERS = "authorization,content-type,idempotency-key,if-none-match"


@dataclass
class Apis:
    query: ManagedProcess
    rerun: ManagedProcess
    db: gfirestore.Client
    issuer: TestIssuer


@pytest.fixture(scope="module")
def apis(firestore: ManagedProcess, pubsub: ManagedProcess, issuer: TestIssuer) -> Iterator[Apis]:
    project = f"cors-{uuid.uuid4().hex[:10]}"
    apply_pubsub(project)
    env = {**cors_env(FRONTEND, regex=PREVIEW_PATTERN), "RATE_LIMIT": f"{LIMIT}/minute"}
    query = start_query_api(firestore.host, issuer, project, **env)
    rerun = start_rerun_api(project, issuer, **env, **VIDEO_ENV)
    db = gfirestore.Client(project=project)
    try:
        yield Apis(query, rerun, db, issuer)
    finally:
        query.stop()
        rerun.stop()
        db.close()


def _user() -> str:
    return f"u{uuid.uuid4().hex[:10]}"


def _preflight(url: str, origin: str, method: str, headers: str = ASKED_HEADERS) -> httpx.Response:
    return httpx.options(
        url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
        timeout=10,
    )


def _header_set(response: httpx.Response, name: str) -> set[str]:
    return {part.strip().lower() for part in response.headers.get(name, "").split(",") if part}


def _until_429(call: Callable[[], httpx.Response]) -> httpx.Response:
    """Spends the rest of the caller's per-minute budget; the answer after it."""
    for _ in range(LIMIT + 1):
        response = call()
        if response.status_code == 429:
            return response
    return response


def _assert_readable(response: httpx.Response, origin: str = FRONTEND) -> None:
    """What Chromium needs to give the script the status, body and our headers."""
    assert response.headers.get("access-control-allow-origin") == origin, response.headers
    assert _header_set(response, "access-control-expose-headers") >= EXPOSED
    assert "origin" in _header_set(response, "vary")
    assert "access-control-allow-credentials" not in response.headers


def test_preflights_are_answered_before_auth_and_rate_limit_and_cached_long(apis: Apis) -> None:
    # No token, and four times the per-minute limit: a preflight is neither.
    answers = [_preflight(apis.query.url + "/analyses", FRONTEND, "GET") for _ in range(4 * LIMIT)]
    assert {a.status_code for a in answers} == {200}
    first = answers[0]
    assert first.headers["access-control-allow-origin"] == FRONTEND
    assert {"authorization", "content-type", "idempotency-key", "if-none-match"} <= _header_set(
        first, "access-control-allow-headers"
    )
    assert _header_set(first, "access-control-allow-methods") == {"get"}
    assert 600 <= int(first.headers["access-control-max-age"]) <= 7200

    create = _preflight(apis.rerun.url + "/analyses", FRONTEND, "POST")
    rerun = _preflight(apis.rerun.url + "/analyses/some-id/rerun", PREVIEW, "POST")
    delete = _preflight(apis.rerun.url + "/analyses/some-id", FRONTEND, "DELETE")
    for answer, origin in ((create, FRONTEND), (rerun, PREVIEW), (delete, FRONTEND)):
        assert answer.status_code == 200, answer.text
        assert answer.headers["access-control-allow-origin"] == origin
        assert _header_set(answer, "access-control-allow-methods") == {"delete", "post"}


def test_every_answer_the_frontend_reads_carries_cors_headers(
    apis: Apis, firestore: ManagedProcess
) -> None:
    alice, bob = _user(), _user()
    seed(apis.db, f"{alice}-done", user=alice, status="done")
    seed(apis.db, f"{alice}-busy", user=alice, status="queued")
    seed(apis.db, f"{alice}-more", user=alice, status="done")
    seed(apis.db, f"{bob}-busy", user=bob, status="running")
    seed(apis.db, f"{bob}-done", user=bob, status="done")
    origin = {"Origin": FRONTEND}
    as_alice = {**origin, **apis.issuer.headers(alice)}
    as_bob = {**origin, **apis.issuer.headers(bob)}
    q, r = apis.query.url, apis.rerun.url

    page = httpx.get(q + "/analyses?limit=1", headers=as_alice, timeout=10)
    assert page.status_code == 200
    assert page.headers["x-next-page-token"]
    assert 'rel="next"' in page.headers["link"]
    # What lets the browser's own cache revalidate a plain fetch() poll, per user.
    assert page.headers["etag"]
    assert page.headers["cache-control"] == "private, no-cache"
    assert {"authorization", "origin"} <= _header_set(page, "vary")
    not_modified = httpx.get(
        q + "/analyses?limit=1", headers={**as_alice, "If-None-Match": page.headers["etag"]}
    )
    assert not_modified.status_code == 304
    assert not_modified.headers["vary"].lower().startswith("authorization")

    created = httpx.post(
        r + "/analyses",
        headers={**as_alice, "Idempotency-Key": uuid.uuid4().hex},
        json={
            "video_url": video_url(alice),
            "dance_type": "salsa",
            "dancers": ["lead", "follow"],
            "analysis_type": "couple",
        },
        timeout=10,
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"].startswith("/analyses/")

    answers = {
        "list 200": page,
        "list 304": not_modified,
        "create 201": created,
        "rerun 202": httpx.post(r + f"/analyses/{alice}-done/rerun", headers=as_alice),
        "list 401": httpx.get(q + "/analyses", headers={**origin, "Authorization": "Bearer x"}),
        "rerun 401": httpx.post(r + f"/analyses/{alice}-done/rerun", headers=origin),
        "detail 404": httpx.get(q + "/analyses/nope", headers=as_alice),
        "rerun 409": httpx.post(r + f"/analyses/{alice}-busy/rerun", headers=as_alice),
        "cancel 200": httpx.post(r + f"/analyses/{bob}-busy/cancel", headers=as_bob),
        "cancel 409": httpx.post(r + f"/analyses/{bob}-done/cancel", headers=as_bob),
        "delete 204": httpx.delete(r + f"/analyses/{bob}-done", headers=as_bob),
        "delete 404": httpx.delete(r + f"/analyses/{bob}-done", headers=as_bob),
        "list 422": httpx.get(
            q + "/analyses?limit=0", headers={**origin, **apis.issuer.headers(bob)}
        ),
        "create 422": httpx.post(r + "/analyses", headers=as_alice, json={"video_url": "x"}),
        # Over MAX_BODY_BYTES: the request guard answers before any route, inside CORS.
        "create 413": httpx.post(
            r + "/analyses",
            headers={**as_alice, "Content-Type": "application/json"},
            content=b'{"dance_type": "' + b"x" * 20_000 + b'"}',
        ),
    }
    answers["list 429"] = _until_429(lambda: httpx.get(q + "/analyses", headers=as_alice))
    answers["rerun 429"] = _until_429(
        lambda: httpx.post(r + f"/analyses/{alice}-more/rerun", headers=as_alice)
    )

    for name, response in answers.items():
        expected = int(name.rsplit(" ", 1)[1])
        assert response.status_code == expected, (name, response.status_code, response.text)
        _assert_readable(response)
        if expected >= 400:
            assert response.json()["error"]["code"], name
    assert answers["list 429"].headers["retry-after"]


def test_a_503_is_readable_too(firestore: ManagedProcess, issuer: TestIssuer) -> None:
    nothing_there = f"127.0.0.1:{free_port()}"
    proc = start_query_api(
        nothing_there,
        issuer,
        f"cors-down-{uuid.uuid4().hex[:8]}",
        FIRESTORE_TIMEOUT_SECONDS="1",
        FIRESTORE_RETRY_SECONDS="0",
        **cors_env(FRONTEND),
    )
    try:
        down = httpx.get(
            proc.url + "/analyses",
            headers={"Origin": FRONTEND, **issuer.headers(_user())},
            timeout=30,
        )
    finally:
        proc.stop()
    assert down.status_code == 503, down.text
    _assert_readable(down)
    assert down.headers["retry-after"]


def _without_volatile(response: httpx.Response) -> dict[str, str]:
    return {
        k: v
        for k, v in response.headers.items()
        if k not in ("date", "x-request-id", "content-length")
    }


def test_a_disallowed_origin_gets_no_cors_headers_and_nothing_else_changes(apis: Apis) -> None:
    headers = apis.issuer.headers(_user())
    url = apis.query.url + "/analyses"
    plain = httpx.get(url, headers=headers)
    stranger = httpx.get(url, headers={**headers, "Origin": STRANGER})
    assert stranger.status_code == plain.status_code == 200
    assert stranger.content == plain.content
    assert _without_volatile(stranger) == _without_volatile(plain)
    assert not [k for k in stranger.headers if k.startswith("access-control-")]

    # Its preflight is an OPTIONS like any other: not served, no CORS headers.
    for target in (url, apis.rerun.url + "/analyses"):
        refused = _preflight(target, STRANGER, "GET")
        bare = httpx.options(target)
        assert refused.status_code == bare.status_code == 405
        assert refused.json()["error"]["code"] == bare.json()["error"]["code"]
        assert not [k for k in refused.headers if k.startswith("access-control-")]


def test_a_preflight_asking_for_more_than_is_served_is_refused(apis: Apis) -> None:
    wrong_method = _preflight(apis.query.url + "/analyses", FRONTEND, "DELETE")
    wrong_header = _preflight(apis.rerun.url + "/analyses", FRONTEND, "POST", "x-secret")
    for answer in (wrong_method, wrong_header):
        assert answer.status_code == 400


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        ("http://localhost:5173", True),
        ("http://127.0.0.1:3000", True),
        ("http://localhost", True),
        ("https://localhost:5173", False),
        ("http://localhost.evil.example:5173", False),
        ("http://127.0.0.1.evil.example", False),
        ("https://app.example.com", False),
    ],
)
def test_the_local_profile_allows_any_local_port_and_nothing_else(
    origin: str, allowed: bool
) -> None:
    env = shared_env(StackSettings())
    settings = HttpServiceSettings(cors_allow_origin_regex=env["CORS_ALLOW_ORIGIN_REGEX"])
    middleware = FrontendCORSMiddleware(
        app=lambda *_: None,  # type: ignore[arg-type]
        allow_origin_regex=settings.cors_allow_origin_regex,
    )
    assert middleware.is_allowed_origin(origin) is allowed
