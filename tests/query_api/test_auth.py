"""Authentication: 401 with a reason, checked before anything else. (Rate limits:
tests/security/test_rate_limits.py.)"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from flokraft_core.dev import devauth
from flokraft_devstack.issuer import TestIssuer as Issuer
from tests.query_api.conftest import QueryApi


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
