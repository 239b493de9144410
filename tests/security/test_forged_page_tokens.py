"""Forged page tokens are a 400, never a 500, through real HTTP."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.processes import ManagedProcess
from tests.security.conftest import b64


def old_style(payload: bytes) -> str:
    """What an attacker can make without the secret: any payload with the unkeyed
    checksum the old scheme accepted."""
    return b64(payload + b"." + hashlib.sha256(payload).hexdigest()[:12].encode())


PAYLOADS = [
    b"null",
    b"[]",
    b"5",
    b'"text"',
    b'{"v":1,"ts":"2025-03-01T12:00:00Z","id":"\\ud800"}',  # a lone surrogate
    b'{"v":1,"ts":5,"id":"x"}',
    b'{"v":2,"ts":"2025-03-01T12:00:00Z","id":"x"}',
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_forged_page_tokens_are_400(
    query_api: ManagedProcess, issuer: TestIssuer, payload: bytes
) -> None:
    for token in (old_style(payload), f"{b64(payload)}.{b64(bytes(16))}"):
        for path, admin in (("/analyses", False), ("/admin/analyses", True)):
            response = httpx.get(
                query_api.url + path,
                params={"page_token": token},
                headers=issuer.headers("tok-user", admin=admin),
                timeout=10,
            )
            assert response.status_code == 400, (payload, path, response.text)
            assert response.json()["error"]["param"] == "page_token"
