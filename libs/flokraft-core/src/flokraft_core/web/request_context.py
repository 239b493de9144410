"""Request ids and the JSON access log, as plain ASGI middleware (cheap on the hot path).

The id comes from `X-Request-ID` when the caller (or the ingress) sends a sane one,
otherwise it is generated; it is bound to every log line of the request and echoed back.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flokraft_core.logs import get_logger

REQUEST_ID_HEADER = "x-request-id"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})

access_log = get_logger("access")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = self._incoming_id(scope) or uuid.uuid4().hex
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path = scope.get("path", "")
            if path not in _QUIET_PATHS or status >= 400:
                access_log.info(
                    "request",
                    method=scope.get("method"),
                    path=path,
                    query=scope.get("query_string", b"").decode("latin-1")[:256],
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                    user=state.get("uid"),
                )
            structlog.contextvars.clear_contextvars()

    @staticmethod
    def _incoming_id(scope: Scope) -> str | None:
        for name, value in scope.get("headers", []):
            if name == REQUEST_ID_HEADER.encode():
                candidate = value.decode("latin-1")
                return candidate if _SANE_ID.match(candidate) else None
        return None
