"""FastAPI dependencies of rerun-api: what the lifespan built once (commands, lifecycle,
publisher, idempotency store), the settings, and the request's Idempotency-Key scope."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from flokraft_core.messaging.publisher import JobPublisher
from flokraft_core.web.security import CurrentUser
from flokraft_core.web.state import from_app_state
from rerun_api.commands import AnalysisCommands
from rerun_api.idempotency import AnswerOf, IdempotencyKey, IdempotencyStore, KeyReceipt
from rerun_api.lifecycle import AnalysisLifecycle
from rerun_api.settings import RerunApiSettings

Commands = Annotated[AnalysisCommands, Depends(from_app_state("commands", AnalysisCommands))]
Lifecycle = Annotated[AnalysisLifecycle, Depends(from_app_state("lifecycle", AnalysisLifecycle))]
Publisher = Annotated[JobPublisher, Depends(from_app_state("publisher", JobPublisher))]
Idempotency = Annotated[IdempotencyStore, Depends(from_app_state("idempotency", IdempotencyStore))]
Settings = Annotated[RerunApiSettings, Depends(from_app_state("settings", RerunApiSettings))]

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
