"""Nothing is read before it is allowed: plain ASGI middleware in front of every route.

In this order, each step cheaper than the next:
1. the client address's budget of failed requests (`RATE_LIMIT_PER_IP`): an address that
   has spent it gets 429 for anything but a request with a valid token;
2. the body limit from Content-Length (413 without reading a byte);
3. for requests that carry a body, the bearer token (401 without reading a byte);
4. the body limit again while the body streams in (chunked or lying Content-Length).

What the per-address budget counts: every 4xx answered to a request that carried no valid
token (a bad or missing token, an oversized or malformed request, a path that does not
exist), i.e. what costs an abuser nothing to send. Authenticated traffic is governed per
user (`RATE_LIMIT`) and never counts against its address, so the signed-in users behind
one office NAT are not throttled together, not even while someone there floods bad
tokens: once the address is over its budget, their requests still pass on their valid
tokens and the flood gets 429s.

Health, readiness and metrics stay outside the limits: the kubelet and Prometheus poll
them from addresses that must never be throttled.
"""

from __future__ import annotations

from typing import Final

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flokraft_core.web.errors import ApiError, error_body, unavailable
from flokraft_core.web.forwarded import client_key
from flokraft_core.web.security import PRINCIPAL_STATE, authenticate_off_loop, bearer_token

_UNLIMITED_PATHS: Final = frozenset({"/healthz", "/readyz", "/metrics"})
_BODYLESS_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


class BodyTooLarge(HTTPException):
    """Raised from `receive` once the streamed body passes the limit. FastAPI passes
    HTTPExceptions through its body parsing, so the app's handler answers 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def client_address(scope: Scope) -> str:
    """The key a request's client is counted under (web/forwarded.py resolved the client
    already when a proxy is trusted)."""
    client = scope.get("client")
    return client_key(client[0]) if client else "unknown"


def _user_known(scope: Scope) -> bool:
    # The guard (requests with a body) or the route's dependency (web/security.py) put
    # them there once a token was verified.
    state = scope.get("state", {})
    return PRINCIPAL_STATE in state or "uid" in state


class RequestGuard:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = self._counting_failures(scope, send)
        try:
            await self._check(scope)
        except ApiError as exc:
            await self._answer(scope, send, exc)
            return
        await self._run(scope, receive, send)

    @staticmethod
    def _counting_failures(scope: Scope, send: Send) -> Send:
        """Counts a 4xx answered without a verified user against the client's address."""
        failures = getattr(scope["app"].state, "ip_rate_limiter", None)
        if failures is None or scope["path"] in _UNLIMITED_PATHS:
            return send

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                if 400 <= status < 500 and status != 429 and not _user_known(scope):
                    failures.record(client_address(scope))
            await send(message)

        return counting_send

    async def _check(self, scope: Scope) -> None:
        # Set by the app's lifespan; absent only when an app is driven without one (an
        # in-process scrape of /metrics), where there is nothing to count against yet.
        state = scope["app"].state
        address = client_address(scope)
        failures = getattr(state, "ip_rate_limiter", None)
        if failures is not None and scope["path"] not in _UNLIMITED_PATHS:
            try:
                failures.check(address)
            except ApiError as refusal:
                # Over budget: only a valid token gets through (checked now, whatever the
                # method); anything else gets the 429 instead of what it would have got.
                token = bearer_token(_header(scope, b"authorization"))
                if token is None or getattr(state, "verifier", None) is None:
                    raise
                try:
                    await self._authenticate(scope, token)
                except ApiError as exc:
                    if exc.status == 401:
                        raise refusal from None
                    raise
        declared = _header(scope, b"content-length")
        if declared is not None:
            if not declared.isdigit():
                raise ApiError(400, "invalid_argument", "Content-Length is not a number")
            if int(declared) > self.max_body_bytes:
                raise ApiError(
                    413,
                    "payload_too_large",
                    f"the request body is larger than {self.max_body_bytes} bytes",
                )
        if scope["method"] in _BODYLESS_METHODS or scope["path"] in _UNLIMITED_PATHS:
            return
        if _user_known(scope):
            return
        if getattr(state, "verifier", None) is None:
            raise unavailable("the service is starting; try again shortly")
        await self._authenticate(scope, bearer_token(_header(scope, b"authorization")))

    @staticmethod
    async def _authenticate(scope: Scope, token: str | None) -> None:
        state = scope["app"].state
        principal = await authenticate_off_loop(token, state.verifier, state.rate_limiter)
        scope.setdefault("state", {})[PRINCIPAL_STATE] = principal

    async def _run(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge as exc:
            # Only reached when no handler turned it into a response already.
            if started:
                raise
            await self._answer(scope, send, ApiError(413, "payload_too_large", str(exc.detail)))

    @staticmethod
    async def _answer(scope: Scope, send: Send, exc: ApiError) -> None:
        request = Request(scope)
        response = JSONResponse(
            error_body(request, exc.code, exc.message, param=exc.param, **exc.extra),
            status_code=exc.status,
            headers=exc.headers,
        )
        await response(scope, _never_receive, send)


async def _never_receive() -> Message:
    # The body is deliberately never read on a refused request.
    return {"type": "http.disconnect"}
