"""Issue 12, point 9: rate limits an attacker cannot sidestep. A per-IP limit counted
before the token (401s and 413s included), no X-Forwarded-For believed unless a proxy is
configured, and Redis shared by replicas, against a real redis-server."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.query_api.conftest import start_query_api
from tests.rerun_api.conftest import start_rerun_api
from tests.rerun_api.support import apply_pubsub
from tests.support.auth import TestIssuer
from tests.support.processes import LOG_DIR, ManagedProcess, free_port

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
