"""Authentication (401 with a reason), rights (403/404) and per-user rate limits (429)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flokraft_core.dev import devauth
from tests.query_api.conftest import QueryApi, start_query_api
from tests.support.auth import TestIssuer as Issuer
from tests.support.processes import ManagedProcess


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_bad_tokens_get_401_with_a_json_reason(
    api: QueryApi, issuer: Issuer, tmp_path: Path
) -> None:
    stranger_key = devauth.load_or_create_key(tmp_path / "other.pem")
    cases = {
        "missing": ({}, "missing"),
        "not a jwt": (bearer("garbage"), "well-formed"),
        "basic auth": ({"Authorization": "Basic dXNlcjpwYXNz"}, "missing"),
        "expired": (
            bearer(issuer.token("u1", ttl_seconds=60, now=time.time() - 3600)),
            "expired",
        ),
        "wrong audience": (bearer(issuer.token("u1", audience="someone-else")), "audience"),
        "wrong issuer": (bearer(issuer.token("u1", issuer="https://evil")), "issuer"),
        "unknown key": (
            bearer(
                devauth.mint_token(
                    stranger_key, "u1", audience=issuer.audience, issuer=issuer.issuer
                )
            ),
            "key",
        ),
    }
    for name, (headers, reason) in cases.items():
        for path in ("/analyses", "/analyses/some-id", "/admin/analyses"):
            response = httpx.get(api.url + path, headers=headers, timeout=10)
            assert response.status_code == 401, (name, path, response.text)
            error = response.json()["error"]
            assert error["code"] == "unauthenticated"
            assert reason in error["message"], (name, error)
            assert response.headers["www-authenticate"].startswith("Bearer")


def test_tampered_signature_is_401(api: QueryApi, issuer: Issuer) -> None:
    token = issuer.token("u1")
    head, body, signature = token.split(".")
    tampered = f"{head}.{body}.{signature[:-4]}AAAA"
    response = httpx.get(api.url + "/analyses", headers=bearer(tampered), timeout=10)
    assert response.status_code == 401


def test_auth_is_checked_before_parameters(api: QueryApi) -> None:
    response = httpx.get(api.url + "/analyses", params={"limit": "abc"}, timeout=10)
    assert response.status_code == 401


@pytest.fixture
def limited_api(firestore: ManagedProcess, issuer: Issuer) -> Iterator[str]:
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


def test_rate_limit_is_per_user_with_retry_after(limited_api: str, issuer: Issuer) -> None:
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


def test_failed_auth_is_limited_per_client_ip(limited_api: str, issuer: Issuer) -> None:
    statuses = [
        httpx.get(limited_api + "/analyses", headers=bearer("junk"), timeout=10).status_code
        for _ in range(4)
    ]
    assert statuses == [401, 401, 401, 429]
    # A real user from the same IP is not punished for someone else's junk.
    ok = httpx.get(limited_api + "/analyses", headers=issuer.headers("carol"), timeout=10)
    assert ok.status_code == 200
