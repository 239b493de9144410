"""Request heads are bounded in size and in time, through raw sockets against a running
query-api. h11 alone bounded only an incomplete head: a 70 KB block sent at once was
accepted, and a connection that sent nothing (or one header line every few seconds) was
held for as long as it liked."""

from __future__ import annotations

import contextlib
import json
import socket
import time
import uuid
from collections.abc import Iterator

import pytest

from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.processes import ManagedProcess
from tests.query_api.conftest import start_query_api
from tests.security.conftest import raw_request

TIMEOUT = 2.0


@pytest.fixture(scope="module")
def api(firestore: ManagedProcess, issuer: TestIssuer) -> Iterator[ManagedProcess]:
    process = start_query_api(
        firestore.host,
        issuer,
        f"heads-{uuid.uuid4().hex[:10]}",
        HEADER_TIMEOUT_SECONDS=str(TIMEOUT),
        EVENTS_HEARTBEAT_SECONDS="0.5",
    )
    yield process
    process.stop()


def head_with(padding: int) -> bytes:
    return b"GET /analyses HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * padding + b"\r\n\r\n"


def closed_within(sock: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed `sock` (EOF or reset), or None if it did not."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def test_a_complete_70_kb_head_sent_at_once_is_refused_with_431(api: ManagedProcess) -> None:
    answer = raw_request(api.port, head_with(70_000))
    assert answer.status == 431, answer.head
    assert json.loads(answer.body)["error"]["code"] == "header_too_large"
    # Just under the bound it is an ordinary request (401: no token).
    assert raw_request(api.port, head_with(15_000)).status == 401


def test_a_large_head_in_pieces_is_refused_too(api: ManagedProcess) -> None:
    head = head_with(70_000)
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for start in range(0, len(head), 4000):
                sock.sendall(head[start : start + 4000])
        data = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                data += chunk
    assert data.startswith(b"HTTP/1.1 431"), data[:80]


def test_half_open_connections_are_closed_within_the_header_timeout(api: ManagedProcess) -> None:
    sockets = [socket.create_connection(("127.0.0.1", api.port)) for _ in range(100)]
    try:
        started = time.monotonic()
        for sock in sockets:
            assert closed_within(sock, TIMEOUT + 8 - (time.monotonic() - started)) is not None
        assert time.monotonic() - started < TIMEOUT + 5
    finally:
        for sock in sockets:
            sock.close()


def test_a_dripping_head_is_closed_within_the_header_timeout(api: ManagedProcess) -> None:
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /analyses HTTP/1.1\r\nHost: x\r\n")
        closed = False
        for n in range(40):  # one header line every 0.5 s: 20 s if nobody stops it
            try:
                sock.sendall(f"X-Drip-{n}: x\r\n".encode())
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if closed_within(sock, 0.5) is not None:
                closed = True
                break
        lasted = time.monotonic() - started
    assert closed, "the dripping connection was held"
    assert lasted < TIMEOUT + 3, lasted


def test_after_a_response_the_next_head_has_the_same_bound(
    api: ManagedProcess, issuer: TestIssuer
) -> None:
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")  # the next head, never finished
        assert closed_within(sock, TIMEOUT + 8) is not None
        assert time.monotonic() - started < TIMEOUT + 3


def test_a_response_that_outlasts_the_header_timeout_is_not_cut(
    api: ManagedProcess, issuer: TestIssuer
) -> None:
    token = issuer.token(f"u{uuid.uuid4().hex[:8]}")
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as sock:
        head = f"GET /analyses/events HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        sock.sendall(head.encode() + b"\r\n")
        received = b""
        deadline = time.monotonic() + TIMEOUT * 2.5
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            assert chunk, "the stream was cut"
            received += chunk
    assert received.startswith(b"HTTP/1.1 200")
    assert received.count(b": ping") >= 3
