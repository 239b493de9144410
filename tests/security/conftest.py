"""Both APIs as real processes for the security tests, plus raw-socket helpers for the
requests an ordinary HTTP client refuses to send (lying Content-Length, huge headers)."""

from __future__ import annotations

import base64
import contextlib
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.processes import ManagedProcess
from tests.query_api.conftest import running_query_api
from tests.rerun_api.conftest import running_rerun_api


@pytest.fixture(scope="module")
def query_api(firestore: ManagedProcess, issuer: TestIssuer) -> Iterator[ManagedProcess]:
    with running_query_api(firestore.host, issuer, prefix="sec") as api:
        yield api.process


@pytest.fixture(scope="module")
def rerun_api(
    firestore: ManagedProcess, pubsub: ManagedProcess, issuer: TestIssuer
) -> Iterator[ManagedProcess]:
    with running_rerun_api(issuer) as process:
        yield process


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def forged_token(header: dict[str, object], payload: dict[str, object] | None = None) -> str:
    """A JWT with any header at all (PyJWT refuses to make most of these)."""
    body = json.dumps(payload or {"sub": "u1"}).encode()
    return f"{b64(json.dumps(header).encode())}.{b64(body)}.{b64(b'x' * 256)}"


@dataclass
class RawAnswer:
    status: int
    head: str
    body: bytes


def raw_request(port: int, head: bytes, body: bytes = b"", *, timeout: float = 10.0) -> RawAnswer:
    """Sends `head` and `body` on one connection and reads the answer, even when the server
    answers (and closes) before the body was fully sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head + body)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            data = b"".join(chunks)
            head_end = data.find(b"\r\n\r\n")
            if head_end >= 0:
                headers = data[:head_end].decode("latin-1").lower()
                length = next(
                    (
                        int(line.split(":", 1)[1])
                        for line in headers.split("\r\n")
                        if line.startswith("content-length:")
                    ),
                    None,
                )
                if length is not None and len(data) >= head_end + 4 + length:
                    break
    data = b"".join(chunks)
    head_part, _, rest = data.partition(b"\r\n\r\n")
    status = int(head_part.split(b" ", 2)[1]) if head_part else 0
    return RawAnswer(status, head_part.decode("latin-1"), rest)
