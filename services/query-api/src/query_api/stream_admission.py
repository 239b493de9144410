"""Paced admission of event streams: at most `concurrency` streams are being set up at
once (token check, marker read, registration), the rest wait their turn outside the app.

Why: a stream that is open costs a fixed amount of memory (measured, docs/benchmarks.md),
but one being set up costs more for a moment (the whole middleware and dependency stack,
a token check on a worker thread, a Firestore call in flight). 2,000 opened at once had
them all in flight together and took query-api's RSS past its limit; memory CPython has
once taken it mostly keeps. A request waiting here holds only its connection and this
frame. Past `max_waiting` waiters the stream is answered 503 with Retry-After at once (the
frontend keeps polling), so the queue is bounded too.

A plain ASGI middleware, outermost on the stream's path only: the slot is released when
the response starts (the stream's headers, or a refusal), or when the request ends.
"""

from __future__ import annotations

import asyncio

from fastapi import Request
from fastapi.responses import JSONResponse
from prometheus_client import Gauge
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flokraft_core.web.errors import error_body

STREAMS_WAITING = Gauge(
    "flokraft_event_streams_waiting", "Event streams waiting for their turn to be set up."
)


class StreamAdmission:
    def __init__(
        self,
        app: ASGIApp,
        *,
        path: str,
        concurrency: int,
        max_waiting: int,
        retry_after_seconds: int,
    ) -> None:
        self.app = app
        self.path = path
        self.max_waiting = max_waiting
        self.retry_after_seconds = retry_after_seconds
        self._slots = asyncio.Semaphore(concurrency)
        self._waiting = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        if self._waiting >= self.max_waiting:
            response = JSONResponse(
                error_body(
                    Request(scope),
                    "too_many_streams",
                    "event streams are being opened faster than this replica takes them; "
                    "keep polling",
                ),
                status_code=503,
                headers={"Retry-After": str(self.retry_after_seconds)},
            )
            await response(scope, receive, send)
            return
        self._waiting += 1
        STREAMS_WAITING.set(self._waiting)
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
            STREAMS_WAITING.set(self._waiting)
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self._slots.release()

        async def releasing_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                release()
            await send(message)

        try:
            await self.app(scope, receive, releasing_send)
        finally:
            release()
