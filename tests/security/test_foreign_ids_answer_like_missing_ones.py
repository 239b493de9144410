"""Someone else's analysis and a missing one answer 404 at the same cost, so response
times do not tell which ids exist.

What made the foreign 404 slower was reading the whole document (report included) before
the owner was checked. Timing on a shared machine is noise-prone, so the test measures the
cause instead: query-api talks to Firestore through a byte-counting proxy, and the bytes
the database sends for a foreign id must be those it sends for a missing one, not the
900 KB report the foreign document holds."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from google.cloud import firestore

from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.processes import ManagedProcess
from tests.query_api.conftest import start_query_api

REPORT_BYTES = 900_000


class CountingProxy:
    """A TCP relay to the Firestore emulator that counts the bytes coming back."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.received = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, count: bool) -> None:
        try:
            while data := source.recv(65536):
                if count:
                    with self._lock:
                        self.received += len(data)
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def proxied_query_api(
    firestore: ManagedProcess, issuer: TestIssuer
) -> Iterator[tuple[ManagedProcess, CountingProxy]]:
    proxy = CountingProxy(firestore.port)
    process = start_query_api(f"127.0.0.1:{proxy.port}", issuer, f"own-{uuid.uuid4().hex[:8]}")
    try:
        yield process, proxy
    finally:
        process.stop()
        proxy.close()


def test_foreign_and_missing_ids_read_the_same_from_the_database(
    proxied_query_api: tuple[ManagedProcess, CountingProxy], issuer: TestIssuer
) -> None:
    api, proxy = proxied_query_api
    db = firestore.Client(project=api.env["GOOGLE_CLOUD_PROJECT"])
    foreign = f"big-{uuid.uuid4().hex[:8]}"
    db.collection("analyses").document(foreign).set(
        {"user_id": "victim", "status": "done", "text": "x" * REPORT_BYTES, "dance_type": "salsa"}
    )
    db.close()
    missing = f"none-{uuid.uuid4().hex[:8]}"

    def database_bytes(analysis_id: str, uid: str, status: int) -> int:
        before = proxy.received
        response = http.get(f"/analyses/{analysis_id}", headers=issuer.headers(uid))
        assert response.status_code == status, response.text
        time.sleep(0.2)  # let the relay count the last frames
        return proxy.received - before

    with httpx.Client(base_url=api.url, timeout=30) as http:
        database_bytes(missing, "prober", 404)  # warm-up: the channel's first handshake
        foreign_bytes = max(database_bytes(foreign, "prober", 404) for _ in range(3))
        missing_bytes = max(database_bytes(missing, "prober", 404) for _ in range(3))
        owner_bytes = database_bytes(foreign, "victim", 200)

    print(f"database bytes per 404: foreign {foreign_bytes}, missing {missing_bytes}")
    # The owner's read does bring the report: the proxy sees what the service reads.
    assert owner_bytes > REPORT_BYTES
    # Someone else's 404 reads no more than a missing id's (not the report).
    assert foreign_bytes < missing_bytes + 2048, (foreign_bytes, missing_bytes)
