"""A hanging JWKS endpoint does not hold requests. The last good keys keep serving while one
background refresh runs; keys stale past AUTH_JWKS_STALE_SECONDS are reported (metrics,
/readyz's `dependencies`) without making the pod unready: the issuer is shared by every
replica, and the stale keys still verify."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jwt
import pytest
from jwt.algorithms import RSAAlgorithm

from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.probes import metric_value
from flokraft_devstack.processes import ManagedProcess
from tests.query_api.conftest import start_query_api


class HangableJwks:
    """A JWKS server that can be told to hang (answer nothing for a minute)."""

    def __init__(self, issuer: TestIssuer) -> None:
        kid = jwt.get_unverified_header(issuer.token("u"))["kid"]
        key = json.loads(RSAAlgorithm.to_jwk(issuer.key.public_key()))
        self.document = json.dumps({"keys": [{**key, "kid": kid, "alg": "RS256"}]}).encode()
        self.hang = threading.Event()
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests += 1
                if owner.hang.is_set():
                    time.sleep(60)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(owner.document)))
                self.end_headers()
                self.wfile.write(owner.document)

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"


@pytest.fixture
def jwks(issuer: TestIssuer) -> Iterator[HangableJwks]:
    server = HangableJwks(issuer)
    threading.Thread(target=server.server.serve_forever, daemon=True).start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def query_api_on_jwks(
    firestore: ManagedProcess, issuer: TestIssuer, jwks: HangableJwks
) -> Iterator[ManagedProcess]:
    process = start_query_api(
        firestore.host,
        issuer,
        f"jwks-{uuid.uuid4().hex[:8]}",
        AUTH_JWKS_URL=jwks.url,
        AUTH_JWKS_CACHE_SECONDS="1",
        AUTH_JWKS_TIMEOUT_SECONDS="3",
        AUTH_JWKS_STALE_SECONDS="4",
        DEPENDENCY_CHECK_INTERVAL_SECONDS="0.5",
    )
    try:
        yield process
    finally:
        process.stop()


def test_a_hanging_jwks_endpoint_does_not_hold_requests(
    query_api_on_jwks: ManagedProcess, jwks: HangableJwks, issuer: TestIssuer
) -> None:
    url = query_api_on_jwks.url
    headers = issuer.headers("jwks-user")
    assert httpx.get(url + "/analyses", headers=headers, timeout=10).status_code == 200
    assert httpx.get(url + "/readyz", timeout=10).json()["checks"]["auth_keys"] == "ok"

    jwks.hang.set()
    time.sleep(1.5)  # the keys are now past AUTH_JWKS_CACHE_SECONDS

    def timed_get(_: int) -> tuple[int, float]:
        started = time.monotonic()
        response = httpx.get(url + "/analyses", headers=headers, timeout=30)
        return response.status_code, time.monotonic() - started

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(timed_get, range(16)))
    assert [status for status, _ in results] == [200] * 16
    # Nobody waited for the hanging endpoint (its fetch timeout alone is 3 s).
    assert max(seconds for _, seconds in results) < 2.0, results

    # Stale past the bound: still serving and still ready, and the metrics and /readyz's
    # body say so.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready = httpx.get(url + "/readyz", timeout=10)
        if ready.json()["dependencies"]["jwks"] != "ok":
            break
        time.sleep(0.5)
    assert ready.status_code == 200
    assert ready.json()["checks"]["auth_keys"] == "ok"
    assert "signing keys are" in ready.json()["dependencies"]["jwks"]
    assert metric_value(url, "flokraft_dependency_up", dependency="jwks") == 0
    assert httpx.get(url + "/analyses", headers=headers, timeout=10).status_code == 200

    jwks.hang.clear()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if httpx.get(url + "/readyz", timeout=10).json()["dependencies"]["jwks"] == "ok":
            break
        time.sleep(0.5)
    assert httpx.get(url + "/readyz", timeout=10).json()["dependencies"]["jwks"] == "ok"
    assert metric_value(url, "flokraft_dependency_up", dependency="jwks") == 1
