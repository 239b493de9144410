"""The drain on SIGTERM: stop being chosen before stopping to answer.

A rollout or a scale-down deletes a pod. The kubelet runs the preStop pause (the chart's
`drain.preStopSeconds`, while the endpoints controller and the load balancer stop routing
to the pod), then sends SIGTERM. uvicorn on its own would close the listening socket at
once, and whatever still routes here by readiness (a load balancer's health check, a
proxy that has not probed yet) would get refused connections. So on SIGTERM:

1. `Drain.begin()`: /readyz answers 503 at once, every response carries
   `Connection: close` (keep-alive clients and proxies open their next connection
   elsewhere), and query-api's event streams send their final `reconnect`;
2. for `DRAIN_SECONDS` the server keeps accepting and answering as usual, long enough for
   readiness-driven routing to notice (probe period x failure threshold);
3. then uvicorn's graceful shutdown: it stops accepting, lets in-flight requests finish
   (within its graceful timeout) and exits.

SIGINT (Ctrl-C at a terminal) skips the pause. The same sequence runs under any container
engine: only SIGTERM and the pause before it matter, not who sends them.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from types import FrameType

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flokraft_core.logs import get_logger

log = get_logger(__name__)


class Drain:
    """Whether this process is draining (one per app; set from the signal handler)."""

    def __init__(self) -> None:
        self.started_at: float | None = None

    @property
    def draining(self) -> bool:
        return self.started_at is not None

    def begin(self) -> None:
        if self.started_at is None:
            self.started_at = time.monotonic()


class CloseWhileDraining:
    """Adds `Connection: close` to every response once the drain has begun, so no client
    keeps a connection to a process that is about to stop accepting (h11 closes the
    connection after such a response)."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_closing(message: Message) -> None:
            if message["type"] == "http.response.start" and self.drain.draining:
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"connection"]
                headers.append((b"connection", b"close"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_closing)


class DrainingServer(uvicorn.Server):
    """uvicorn with the drain above: SIGTERM begins the drain and shuts down after
    `drain_seconds`; a second signal, or SIGINT, shuts down at once."""

    def __init__(self, config: uvicorn.Config, *, drain: Drain, drain_seconds: float) -> None:
        super().__init__(config)
        self.drain = drain
        self.drain_seconds = drain_seconds
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        pause = self.drain_seconds if sig == signal.SIGTERM else 0.0
        if self.drain.draining or pause <= 0 or self._loop is None:
            self.drain.begin()
            super().handle_exit(sig, frame)
            return
        self.drain.begin()
        log.info("drain_started", seconds=pause)
        # Runs in the signal handler on the loop's thread; the timer goes through the
        # loop so the shutdown starts from it.
        self._loop.call_soon_threadsafe(self._loop.call_later, pause, self._finish, sig)

    def _finish(self, sig: int) -> None:
        log.info("drain_done")
        super().handle_exit(sig, None)
