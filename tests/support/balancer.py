"""A small round-robin HTTP proxy for tests: the load balancer plus the endpoints
controller of a cluster, in one process's threads.

It routes each request to the next backend whose readiness passes, as a `Prober` of
that backend sees it (probing at the chart's readinessProbe period), over pooled
keep-alive connections like a real load balancer. It never retries: a backend that
refuses or drops a request gives the client 502, as a load balancer would, and the test
counts it.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from tests.support.kubelet import Prober

# Hop-by-hop headers are the proxy's own business on each side (RFC 9110 7.6.1).
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "content-length"}


class Balancer:
    def __init__(self) -> None:
        self._probers: dict[str, Prober] = {}
        self._lock = threading.Lock()
        self._turn = itertools.count()
        self._upstream = httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=32))
        self.routed: dict[str, int] = {}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                owner._forward(self)

            def log_message(self, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def add(self, prober: Prober) -> None:
        """A new endpoint: routed to once its readiness probe passes."""
        with self._lock:
            self._probers[prober.url] = prober
        prober.start()

    def remove(self, url: str) -> None:
        with self._lock:
            prober = self._probers.pop(url)
        prober.stop()

    def ready_backends(self) -> list[str]:
        with self._lock:
            return [url for url, prober in self._probers.items() if prober.ready]

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        ready = self.ready_backends()
        if not ready:
            self._answer(handler, 503, b"no healthy upstream", {})
            return
        backend = ready[next(self._turn) % len(ready)]
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        try:
            response = self._upstream.get(backend + handler.path, headers=headers)
        except httpx.HTTPError as exc:
            self._answer(handler, 502, f"upstream {backend}: {type(exc).__name__}".encode(), {})
            return
        with self._lock:
            self.routed[backend] = self.routed.get(backend, 0) + 1
        kept = {k: v for k, v in response.headers.items() if k.lower() not in _HOP_BY_HOP}
        self._answer(handler, response.status_code, response.content, kept)

    @staticmethod
    def _answer(
        handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]
    ) -> None:
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        for url in list(self._probers):
            self.remove(url)
        self._upstream.close()


@contextmanager
def running_balancer() -> Iterator[Balancer]:
    balancer = Balancer()
    thread = threading.Thread(target=balancer._server.serve_forever, daemon=True)
    thread.start()
    try:
        yield balancer
    finally:
        balancer.close()
