"""A Firestore outage answers 503 quickly (bounded timeout and retry), makes the pod
unready, keeps it alive, and the service recovers when Firestore is back."""

from __future__ import annotations

import time
import uuid

import httpx

from tests.query_api.conftest import start_query_api
from tests.support.auth import TestIssuer as Issuer
from tests.support.processes import ManagedProcess


def test_outage_is_a_fast_503_and_recovery_is_automatic(
    private_firestore: ManagedProcess, issuer: Issuer
) -> None:
    proc = start_query_api(
        private_firestore.host,
        issuer,
        f"out-{uuid.uuid4().hex[:8]}",
        FIRESTORE_TIMEOUT_SECONDS="2",
        FIRESTORE_RETRY_SECONDS="1",
    )
    headers = issuer.headers("u1")
    try:
        assert httpx.get(proc.url + "/analyses", headers=headers, timeout=10).status_code == 200

        private_firestore.stop()
        started = time.monotonic()
        down = httpx.get(proc.url + "/analyses", headers=headers, timeout=30)
        elapsed = time.monotonic() - started
        assert down.status_code == 503, down.text
        assert down.json()["error"]["code"] == "unavailable"
        assert down.headers["retry-after"]
        # Bounded by timeout + retry budget (generous margin for a loaded machine),
        # far from the client library's default of a minute or more.
        assert elapsed < 15, elapsed
        detail = httpx.get(proc.url + "/analyses/x1", headers=headers, timeout=30)
        assert detail.status_code == 503
        assert httpx.get(proc.url + "/readyz", timeout=10).status_code == 503
        assert httpx.get(proc.url + "/healthz", timeout=10).status_code == 200

        private_firestore.start(timeout=30)
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline:
            status = httpx.get(proc.url + "/analyses", headers=headers, timeout=30).status_code
            if status == 200:
                break
            time.sleep(0.5)
        assert status == 200
    finally:
        proc.stop()
