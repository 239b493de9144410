"""`GET /analyses/events`: a Server-Sent Events stream that tells the caller the moment
their list changed, so a frontend refetches then instead of polling every 3 s.

    id: 7
    event: changed
    data: {"version":7}

The event id is the caller's change-marker version. The data is the version only: the
feed sees markers, not rows, so sending rows would cost a list query per stream per
change (and the stream does not know which filters and page each tab shows). The client
answers an event with its usual conditional `GET /analyses`, which reads the rows once.

Connect: the marker is read once. The first event is `ready` (or `changed` when the
client's `Last-Event-ID` differs from the current version: it missed a change while
away) and carries the `retry:` hint. Then `changed` on every move of the marker, a
heartbeat comment every `EVENTS_HEARTBEAT_SECONDS`, and a final `reconnect` event when
the stream reaches its lifetime (`"lifetime"`), its token expires (`"token_expired"`: the
client gets a fresh token before it reconnects) or the replica shuts down
(`"shutdown"`).

A user's or an address's streams beyond their cap get 429, the replica's beyond its cap
503, both with Retry-After: the frontend keeps polling meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Final

import anyio
from fastapi import APIRouter, Header, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.types import Receive, Scope, Send

from flokraft_core.auth import Principal
from flokraft_core.web.errors import ApiError, error_responses
from flokraft_core.web.guard import client_address
from flokraft_core.web.params import optional_header
from flokraft_core.web.security import CurrentUser
from query_api.dependencies import Hub, Reads, Settings
from query_api.event_streams import (
    EVENTS_SENT,
    EventHub,
    StreamsFull,
    Subscription,
    marker_version,
)
from query_api.responses import COMMON_RESPONSES

EVENTS_PATH = "/analyses/events"
# A stream ends a little before its configured lifetime, at a random point, so streams
# opened together (after a deploy) do not all reconnect in the same second.
_LIFETIME_JITTER = 0.1
# Lines end in LF, in events and heartbeats alike (the spec allows CRLF, LF or CR).
_SEP = "\n"


# One event of the stream, as OpenAPI 3.1 describes a text/event-stream body (`schema`
# is each event; its `data` is JSON, described by contentSchema). Heartbeats are SSE
# comments, not events.
_VERSION_DATA: Final = {
    "type": "string",
    "contentMediaType": "application/json",
    "contentSchema": {
        "type": "object",
        "properties": {"version": {"type": "integer", "minimum": 0}},
        "required": ["version"],
    },
}
_RETRY: Final = {"type": "integer", "minimum": 0, "description": "Reconnection delay, ms."}
STREAM_EVENT_SCHEMA: Final = {
    "oneOf": [
        {
            "type": "object",
            "description": "`ready` opens the stream (with `retry`); `changed` says the "
            "list moved (on connect too, when Last-Event-ID is behind).",
            "properties": {
                "event": {"type": "string", "enum": ["ready", "changed"]},
                "id": {"type": "string", "pattern": "^[0-9]+$"},
                "retry": _RETRY,
                "data": _VERSION_DATA,
            },
            "required": ["event", "id", "data"],
        },
        {
            "type": "object",
            "description": "The last event: reconnect (with a fresh token after `token_expired`).",
            "properties": {
                "event": {"type": "string", "const": "reconnect"},
                "retry": _RETRY,
                "data": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": {
                        "type": "object",
                        "properties": {
                            "reason": {
                                "type": "string",
                                "enum": ["lifetime", "token_expired", "shutdown"],
                            }
                        },
                        "required": ["reason"],
                    },
                },
            },
            "required": ["event", "data"],
        },
    ]
}


def _event(
    kind: str, payload: dict[str, Any], *, event_id: int | None, retry_ms: int | None
) -> ServerSentEvent:
    EVENTS_SENT.labels(kind).inc()
    return ServerSentEvent(
        data=json.dumps(payload, separators=(",", ":")),
        event=kind,
        id=None if event_id is None else str(event_id),
        retry=retry_ms,
        sep=_SEP,
    )


async def _stream(
    subscription: Subscription,
    client_version: int | None,
    *,
    lifetime_seconds: float,
    token_seconds: float,
    retry_ms: int,
) -> AsyncIterator[ServerSentEvent]:
    loop = asyncio.get_running_loop()
    lifetime = lifetime_seconds * (1 - _LIFETIME_JITTER * random.random())  # noqa: S311
    # A stream never outlives the token it was opened with: a revoked or expired sign-in
    # must not keep hearing about changes.
    end_reason = "token_expired" if token_seconds < lifetime else "lifetime"
    deadline = loop.time() + min(lifetime, token_seconds)
    version = subscription.latest
    kind = "ready" if client_version in (None, version) else "changed"
    subscription.sent = version
    yield _event(kind, {"version": version}, event_id=version, retry_ms=retry_ms)
    while True:
        if subscription.closing is not None:
            yield _event(
                "reconnect", {"reason": subscription.closing}, event_id=None, retry_ms=retry_ms
            )
            return
        if subscription.latest != subscription.sent:
            version = subscription.sent = subscription.latest
            yield _event("changed", {"version": version}, event_id=version, retry_ms=None)
            continue
        remaining = deadline - loop.time()
        if remaining <= 0:
            yield _event("reconnect", {"reason": end_reason}, event_id=None, retry_ms=retry_ms)
            return
        subscription.wakeup.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(remaining):
                await subscription.wakeup.wait()


class _StreamResponse(EventSourceResponse):
    """Releases the stream's place in the hub however the response ends (finished, client
    gone, cancelled at shutdown), including when the body never started."""

    def __init__(self, hub: EventHub, subscription: Subscription, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._hub = hub
        self._subscription = subscription

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._hub.close(self._subscription)


def _token_seconds_left(user: Principal) -> float:
    # Verified tokens always carry `exp` (PyJWT requires it); a missing one ends the
    # stream at its lifetime.
    exp = user.claims.get("exp")
    return float(exp) - time.time() if isinstance(exp, int | float) else float("inf")


router = APIRouter(tags=["events"])


@router.get(
    EVENTS_PATH,
    summary="Server-Sent Events: the caller's list changed",
    response_class=EventSourceResponse,
    responses={
        **{k: v for k, v in COMMON_RESPONSES.items() if k != 304},
        200: {
            "description": "An event stream: `ready`/`changed` events whose id and "
            "`data.version` are the caller's change-marker version, heartbeat comments, "
            "and a final `reconnect` event.",
            "headers": {
                "Cache-Control": {"schema": {"type": "string", "const": "no-store"}},
            },
            "content": {"text/event-stream": {"schema": STREAM_EVENT_SCHEMA}},
        },
        **error_responses(
            {
                429: "The caller's or the address's streams are at their cap, or a "
                "rate limit was hit: keep polling and retry after Retry-After.",
                503: "This replica holds its maximum of open streams, or Firestore is "
                "unavailable: keep polling and retry after Retry-After.",
            }
        ),
    },
)
async def stream_analysis_events(
    request: Request,
    user: CurrentUser,
    reads: Reads,
    settings: Settings,
    hub: Hub,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            pattern=r"^[0-9]{1,18}$",
            description="The id of the last event received, sent on reconnect.",
        ),
        optional_header(pattern=r"^[0-9]{1,18}$"),
    ] = None,
) -> EventSourceResponse:
    retry_after = {"Retry-After": str(settings.events_full_retry_after_seconds)}
    try:
        subscription = hub.open(user.uid, client_address(request.scope))
    except StreamsFull as full:
        if full.cap == "replica":
            raise ApiError(
                503,
                "too_many_streams",
                "this replica holds its maximum of event streams; keep polling",
                headers=retry_after,
            ) from None
        raise ApiError(
            429,
            "too_many_streams",
            f"this {full.cap} holds its maximum of event streams; keep polling",
            headers=retry_after,
        ) from None
    try:
        # Registered before the read: a change landing meanwhile is offered to the
        # subscription too, and the larger version wins.
        subscription.offer(await marker_version(reads, user.uid))
    except BaseException:
        hub.close(subscription)
        raise
    return _StreamResponse(
        hub,
        subscription,
        content=_stream(
            subscription,
            None if last_event_id is None else int(last_event_id),
            lifetime_seconds=settings.events_max_lifetime_seconds,
            token_seconds=_token_seconds_left(user),
            retry_ms=settings.events_retry_ms,
        ),
        ping=settings.events_heartbeat_seconds,
        sep=_SEP,
        headers={"Cache-Control": "no-store", "Vary": "Authorization"},
        # sse-starlette sets this event on SIGTERM and then waits this long before
        # cancelling; the hub's own watcher has the stream send `reconnect` first.
        shutdown_event=anyio.Event(),
        shutdown_grace_period=settings.events_shutdown_grace_seconds,
        send_timeout=settings.events_send_timeout_seconds,
    )
