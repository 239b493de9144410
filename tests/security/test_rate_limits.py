"""Rate limits, through real HTTP against running services: the process-level home of
the rate limit (the limiter library's own unit tests are in libs/flokraft-core/tests).

A per-user budget on query-api's reads and rerun-api's POSTs, with Retry-After; a per-IP
limit counted before the token (401s and 413s included) that never punishes a signed-in
user; no X-Forwarded-For believed unless a proxy is configured; one budget shared by
replicas through Redis, against a real redis-server. How the client address is taken
behind the load balancer: test_client_address_behind_load_balancer.py; many users behind
one address: test_users_behind_one_address.py."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator

import httpx
import pytest

from flokraft_devstack.components import LOG_DIR
from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.processes import ManagedProcess, free_port
from tests.query_api.conftest import start_query_api
from tests.rerun_api.conftest import start_rerun_api
from tests.rerun_api.support import apply_pubsub, video_of

JUNK = {"Authorization": "Bearer junk"}


def junk_from_four_forwarded_clients(url: str) -> list[int]:
    """Bad tokens claiming (X-Forwarded-For) to come from four different clients."""
    return [
        httpx.get(
            url + "/analyses",
            headers={**JUNK, "X-Forwarded-For": f"203.0.113.{n}"},
            timeout=10,
        ).status_code
        for n in range(4)
    ]


BODY = {
    "video_url": video_of("alice"),
    "dance_type": "salsa",
    "dancers": ["a"],
    "analysis_type": "solo",
}


@pytest.fixture
def limited_api(firestore: ManagedProcess, issuer: TestIssuer) -> Iterator[str]:
    proc = start_query_api(
        firestore.host,
        issuer,
        f"rl-{uuid.uuid4().hex[:8]}",
        RATE_LIMIT="3/minute",
        RATE_LIMIT_PER_IP="3/minute",
    )
    try:
        yield proc.url
    finally:
        proc.stop()


def test_rate_limit_is_per_user_with_retry_after(limited_api: str, issuer: TestIssuer) -> None:
    alice = issuer.headers("alice")
    statuses = [
        httpx.get(limited_api + "/analyses", headers=alice, timeout=10).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 200]
    over = httpx.get(limited_api + "/analyses", headers=alice, timeout=10)
    assert over.status_code == 429
    assert over.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(over.headers["retry-after"]) <= 60
    # Another user has their own budget.
    bob = httpx.get(limited_api + "/analyses", headers=issuer.headers("bob"), timeout=10)
    assert bob.status_code == 200


def test_failed_auth_is_limited_per_client_ip(limited_api: str, issuer: TestIssuer) -> None:
    statuses = [
        httpx.get(limited_api + "/analyses", headers=JUNK, timeout=10).status_code for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]
    # A real user from the same IP is not punished for someone else's junk.
    ok = httpx.get(limited_api + "/analyses", headers=issuer.headers("carol"), timeout=10)
    assert ok.status_code == 200


@pytest.fixture
def limited(
    firestore: ManagedProcess, pubsub: ManagedProcess, issuer: TestIssuer, project_id: str
) -> Iterator[httpx.Client]:
    """rerun-api with the per-user limit of its default (RATE_LIMIT, 10 a minute)."""
    apply_pubsub(project_id)
    process = start_rerun_api(project_id, issuer, RATE_LIMIT="10/minute")
    try:
        with httpx.Client(base_url=process.url, timeout=15) as http:
            yield http
    finally:
        process.stop()


def test_the_eleventh_post_in_a_minute_is_429_for_that_user_only(
    limited: httpx.Client, issuer: TestIssuer
) -> None:
    alice = issuer.headers("alice")
    statuses = []
    for i in range(10):
        if i % 2:
            response = limited.post("/analyses", json=BODY, headers=alice)
        else:
            response = limited.post(f"/analyses/a-{uuid.uuid4().hex[:8]}/rerun", headers=alice)
        statuses.append(response.status_code)
    assert 429 not in statuses
    assert statuses.count(201) == 5

    limited_create = limited.post("/analyses", json=BODY, headers=alice)
    limited_rerun = limited.post("/analyses/anything/rerun", headers=alice)

    for response in (limited_create, limited_rerun):
        assert response.status_code == 429
        assert response.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(response.headers["retry-after"]) <= 60
    bob_body = {**BODY, "video_url": video_of("bob")}
    assert (
        limited.post("/analyses", json=bob_body, headers=issuer.headers("bob")).status_code == 201
    )


@pytest.fixture(scope="module")
def redis_server() -> Iterator[ManagedProcess]:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is installed by the project's setup (.ci/run)"
    port = free_port()
    process = ManagedProcess(
        name="redis",
        command=[
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        env={},
        port=port,
        log_path=LOG_DIR / f"redis-{port}.log",
    ).start(timeout=30)
    yield process
    process.stop()


@pytest.fixture
def project() -> str:
    return f"rl-{uuid.uuid4().hex[:10]}"


def test_two_replicas_share_one_limit_through_redis(
    firestore: ManagedProcess, issuer: TestIssuer, redis_server: ManagedProcess, project: str
) -> None:
    env = {"RATE_LIMIT": "4/minute", "RATE_LIMIT_STORAGE_URI": f"redis://{redis_server.host}"}
    first = start_query_api(firestore.host, issuer, project, **env)
    second = start_query_api(firestore.host, issuer, project, **env)
    try:
        alice = issuer.headers(f"alice-{project}")
        statuses = [
            httpx.get(replica.url + "/analyses", headers=alice, timeout=10).status_code
            for replica in (first, second, first, second, first, second)
        ]
        assert statuses == [200, 200, 200, 200, 429, 429]
        bob = httpx.get(second.url + "/analyses", headers=issuer.headers(f"bob-{project}"))
        assert bob.status_code == 200
    finally:
        first.stop()
        second.stop()


def test_the_per_ip_limit_counts_401s_and_413s_before_the_token(
    firestore: ManagedProcess, pubsub: ManagedProcess, issuer: TestIssuer, project: str
) -> None:
    apply_pubsub(project)
    api = start_rerun_api(project, issuer, RATE_LIMIT_PER_IP="5/minute")
    try:
        with httpx.Client(base_url=api.url, timeout=10) as http:
            statuses = [http.post("/analyses", json={}, headers=JUNK).status_code for _ in range(3)]
            statuses += [
                http.post(
                    "/analyses", content=b"x" * 10000, headers=issuer.headers("u")
                ).status_code
                for _ in range(2)
            ]
            assert statuses == [401, 401, 401, 413, 413]
            # The address has spent its budget of failed requests: the next bad token and
            # the next request without one get 429, before any token is looked at.
            for headers in (JUNK, {}):
                over = http.post("/analyses/any/rerun", headers=headers)
                assert over.status_code == 429
                assert over.json()["error"]["code"] == "rate_limited"
                assert int(over.headers["retry-after"]) >= 1
            # A valid token from the same address still gets through: signed-in users are
            # governed per user, not per address.
            assert http.post("/analyses/any/rerun", headers=issuer.headers("u")).status_code == 404
            # Health checks are never throttled.
            assert http.get("/healthz").status_code == 200
    finally:
        api.stop()


def test_x_forwarded_for_is_not_believed_by_default(
    firestore: ManagedProcess, issuer: TestIssuer, project: str
) -> None:
    api = start_query_api(firestore.host, issuer, project, RATE_LIMIT_PER_IP="3/minute")
    try:
        statuses = junk_from_four_forwarded_clients(api.url)
        # Four "different clients" are one client: the connecting peer.
        assert statuses == [401, 401, 401, 429]
    finally:
        api.stop()


def test_a_configured_proxy_is_believed(
    firestore: ManagedProcess, issuer: TestIssuer, project: str
) -> None:
    api = start_query_api(
        firestore.host,
        issuer,
        project,
        RATE_LIMIT_PER_IP="3/minute",
        FORWARDED_ALLOW_IPS="127.0.0.1",
    )
    try:
        statuses = junk_from_four_forwarded_clients(api.url)
        assert statuses == [401, 401, 401, 401]
    finally:
        api.stop()
