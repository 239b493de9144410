"""FastAPI dependencies of rerun-api, all in one place: what the lifespan built once
(commands, lifecycle, publisher, idempotency store, video URL policy), the settings, the
caller bound to the video URL check, the request's Idempotency-Key and its scope, and the
request path's publish.

Routes never read app.state themselves (flokraft_core.web.state): each object is named
once here and routes take it as a typed parameter.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request

from flokraft_core.auth import Principal
from flokraft_core.messaging.publisher import JobPublisher
from flokraft_core.video_urls import VideoUrlPolicy, bind_owner
from flokraft_core.web.params import optional_header
from flokraft_core.web.security import CurrentUser
from flokraft_core.web.state import from_app_state
from rerun_api.commands import AnalysisCommands, QueuedAnalysis
from rerun_api.idempotency import (
    HEADER,
    KEY_REGEX,
    MAX_KEY_LENGTH,
    AnswerOf,
    IdempotencyStore,
    KeyReceipt,
    validate_key,
)
from rerun_api.lifecycle import AnalysisLifecycle
from rerun_api.outbox import publish_now
from rerun_api.settings import RerunApiSettings

Commands = Annotated[AnalysisCommands, Depends(from_app_state("commands", AnalysisCommands))]
Lifecycle = Annotated[AnalysisLifecycle, Depends(from_app_state("lifecycle", AnalysisLifecycle))]
Publisher = Annotated[JobPublisher, Depends(from_app_state("publisher", JobPublisher))]
Idempotency = Annotated[IdempotencyStore, Depends(from_app_state("idempotency", IdempotencyStore))]
Settings = Annotated[RerunApiSettings, Depends(from_app_state("settings", RerunApiSettings))]
UrlPolicy = Annotated[VideoUrlPolicy, Depends(from_app_state("video_url_policy", VideoUrlPolicy))]


async def video_owner(principal: CurrentUser, policy: UrlPolicy) -> Principal:
    """Binds the caller to the video URL check of the request body.

    Async on purpose: FastAPI solves dependencies before it validates the body, in the
    request's own task, so the ContextVar set here is what `CreateAnalysisRequest`'s
    `video_url` validator sees. A foreign or malformed video_url is then one more problem
    in the same 422 as every other field's (a sync dependency would run in a worker
    thread, whose context is thrown away)."""
    bind_owner(policy, principal.uid)
    return principal


VideoOwner = Annotated[Principal, Depends(video_owner)]


async def idempotency_key(
    value: Annotated[
        str | None,
        Header(
            alias=HEADER,
            description="Makes a retried POST return the first answer instead of acting "
            "twice, whatever the first one's outcome (per user; a create's key stays bound "
            "to its analysis, a stored answer is replayed for 24 h).",
        ),
        # Documented, not enforced by FastAPI: `validate_key` answers with our own 422
        # naming the header.
        optional_header(minLength=1, maxLength=MAX_KEY_LENGTH, pattern=KEY_REGEX),
    ] = None,
) -> str | None:
    return None if value is None else validate_key(value)


IdempotencyKey = Annotated[str | None, Depends(idempotency_key)]

# `once(request_hash, answer_of)`: the caller's Idempotency-Key as a receipt for the
# command's transaction (None without a key); see rerun_api.idempotency.
Once = Callable[[str, AnswerOf], KeyReceipt | None]


def _receipt(
    store: IdempotencyStore,
    key: str | None,
    uid: str,
    request: Request,
    request_hash: str,
    answer_of: AnswerOf,
) -> KeyReceipt | None:
    if key is None:
        return None
    return store.receipt(
        uid=uid,
        method=request.method,
        path=request.url.path,
        key=key,
        request_hash=request_hash,
        answer_of=answer_of,
    )


async def idempotency_scope(
    request: Request, principal: CurrentUser, key: IdempotencyKey, store: Idempotency
) -> Once:
    return functools.partial(_receipt, store, key, principal.uid, request)


IdempotencyScope = Annotated[Once, Depends(idempotency_scope)]


async def _job_publishing(
    request: Request, commands: Commands, publisher: Publisher, settings: Settings
) -> Callable[[QueuedAnalysis, str], Awaitable[bool]]:
    trace_id: str | None = getattr(request.state, "request_id", None)
    return functools.partial(publish_now, commands, publisher, settings, trace_id)


# `await publish(queued, operation)`: publishes a committed job now, or leaves it to the
# outbox; returns whether Pub/Sub confirmed it.
PublishJob = Annotated[Callable[[QueuedAnalysis, str], Awaitable[bool]], Depends(_job_publishing)]
