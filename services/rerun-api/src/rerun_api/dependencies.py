"""FastAPI dependencies of rerun-api: what the lifespan built once (commands, lifecycle,
publisher, idempotency store), the settings, and the request's Idempotency-Key scope."""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Annotated

from fastapi import Depends, Request

from flokraft_core.analysis_commands import AnalysisCommands
from flokraft_core.analysis_lifecycle import AnalysisLifecycle
from flokraft_core.job_publisher import JobPublisher
from flokraft_core.web.security import CurrentUser
from flokraft_core.web.state import from_app_state
from rerun_api.idempotency import IdempotencyKey, IdempotencyStore, Idempotent, idempotent
from rerun_api.settings import RerunApiSettings

Commands = Annotated[AnalysisCommands, Depends(from_app_state("commands", AnalysisCommands))]
Lifecycle = Annotated[AnalysisLifecycle, Depends(from_app_state("lifecycle", AnalysisLifecycle))]
Publisher = Annotated[JobPublisher, Depends(from_app_state("publisher", JobPublisher))]
Idempotency = Annotated[IdempotencyStore, Depends(from_app_state("idempotency", IdempotencyStore))]
Settings = Annotated[RerunApiSettings, Depends(from_app_state("settings", RerunApiSettings))]

# `async with once(request_hash) as attempt:` claims the caller's Idempotency-Key (if any)
# for this request; see rerun_api.idempotency.idempotent.
Once = Callable[[str], AbstractAsyncContextManager[Idempotent]]


def idempotency_scope(
    request: Request, principal: CurrentUser, key: IdempotencyKey, store: Idempotency
) -> Once:
    return functools.partial(idempotent, store, key, principal, request)


IdempotencyScope = Annotated[Once, Depends(idempotency_scope)]
