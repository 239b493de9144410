"""POST /analyses and POST /analyses/{id}/rerun: record the intent, then queue the job.

Nothing here runs an analysis. The Firestore write (with its outbox marker) comes first;
the publish after it may fail or time out without failing the request, because the
reconciler (rerun_api.outbox) publishes whatever is still marked.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from google.api_core import exceptions as gexc
from prometheus_client import Counter

from flokraft_core.analyses import list_item_from_document
from flokraft_core.analysis_commands import (
    AnalysisBusy,
    AnalysisNotFound,
    NewAnalysis,
    QueuedAnalysis,
    create_analysis,
    publish_and_clear,
    rerun_analysis,
)
from flokraft_core.auth import Principal
from flokraft_core.jobs import ANALYSIS_ID_PATTERN
from flokraft_core.logs import get_logger
from flokraft_core.web.errors import ApiError
from flokraft_core.web.security import CurrentUser
from rerun_api.active_cap import check_active_cap
from rerun_api.idempotency import (
    IdempotencyClaim,
    IdempotencyKey,
    IdempotencyStoreDep,
    StoredAnswer,
    body_hash,
)
from rerun_api.schemas import (
    AnalysisCreated,
    CreateAnalysisRequest,
    ErrorBody,
    RerunAccepted,
    is_file_url,
)
from rerun_api.settings import RerunApiSettings
from rerun_api.video_owner import VideoOwner

log = get_logger(__name__)

PUBLISHES = Counter(
    "rerun_api_publishes_total",
    "Job publishes on the request path, by outcome (deferred = left to the outbox).",
    ["operation", "outcome"],
)
# Errors that leave the already committed write in place: the request still succeeds.
_AFTER_COMMIT_ERRORS: Final = (gexc.GoogleAPICallError, gexc.RetryError, TimeoutError)

_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    400: {"model": ErrorBody, "description": "The body could not be parsed at all."},
    401: {"model": ErrorBody, "description": "Missing, expired or invalid bearer token."},
    403: {"model": ErrorBody, "description": "The token lacks a needed right."},
    422: {"model": ErrorBody, "description": "Invalid body, path or Idempotency-Key."},
    429: {"model": ErrorBody, "description": "Per-user rate limit hit; see Retry-After."},
    503: {"model": ErrorBody, "description": "Firestore is unavailable; nothing was queued."},
}

router = APIRouter(tags=["analyses"])


def _settings(request: Request) -> RerunApiSettings:
    settings: RerunApiSettings = request.app.state.settings
    return settings


def _replay(answer: StoredAnswer) -> JSONResponse:
    return JSONResponse(
        answer.body,
        status_code=answer.status,
        headers={**answer.headers, "Idempotent-Replayed": "true"},
    )


async def _claim(
    store: IdempotencyStoreDep,
    key: str | None,
    principal: Principal,
    request: Request,
    request_hash: str,
) -> IdempotencyClaim | None:
    if key is None:
        return None
    return await store.claim(
        uid=principal.uid,
        method=request.method,
        path=request.url.path,
        key=key,
        request_hash=request_hash,
    )


async def _release(claim: IdempotencyClaim | None) -> None:
    if claim is None:
        return
    try:
        await claim.release()
    except _AFTER_COMMIT_ERRORS as exc:
        # The record's lock runs out on its own; a retry then takes the key over.
        log.warning("idempotency_release_failed", error=type(exc).__name__)


async def _publish(request: Request, queued: QueuedAnalysis, operation: str) -> bool:
    settings = _settings(request)
    try:
        published = await publish_and_clear(
            request.app.state.db,
            settings.firestore_collection,
            request.app.state.publisher,
            queued.job,
            trace_id=getattr(request.state, "request_id", None),
            publish_timeout=settings.publish_timeout_seconds,
            firestore_timeout=settings.firestore_timeout_seconds,
            written_at=queued.written_at,
        )
    except _AFTER_COMMIT_ERRORS as exc:
        # Published, but the marker could not be cleared: the outbox will send a
        # duplicate, which the analyzer ignores.
        log.warning("publish_marker_not_cleared", analysis_id=queued.analysis_id, error=str(exc))
        published = True
    PUBLISHES.labels(operation, "confirmed" if published else "deferred").inc()
    if not published:
        log.warning(
            "publish_deferred_to_outbox",
            analysis_id=queued.analysis_id,
            generation=queued.generation,
        )
    return published


async def _answer(
    claim: IdempotencyClaim | None, status: int, body: dict[str, Any], headers: dict[str, str]
) -> JSONResponse:
    if claim is not None:
        try:
            await claim.complete(status, body, headers)
        except _AFTER_COMMIT_ERRORS as exc:
            log.warning("idempotency_store_failed", error=type(exc).__name__)
    return JSONResponse(body, status_code=status, headers=headers)


@router.post(
    "/analyses",
    status_code=201,
    response_model=AnalysisCreated,
    summary="Create an analysis and queue its job",
    responses={
        201: {"description": "Queued; `Location` points at the analysis."},
        409: {"model": ErrorBody, "description": "Same Idempotency-Key still in flight."},
        **_ERRORS,
    },
)
async def create(
    request: Request,
    principal: VideoOwner,
    body: CreateAnalysisRequest,
    key: IdempotencyKey,
    store: IdempotencyStoreDep,
) -> JSONResponse:
    settings = _settings(request)
    if is_file_url(body.video_url) and not settings.allow_file_urls:
        raise ApiError(
            422,
            "invalid_argument",
            "video_url: file:// URLs are not accepted here; use gs:// or https://",
            param="video_url",
        )
    claim = await _claim(store, key, principal, request, body_hash(body.model_dump(mode="json")))
    if claim is not None and claim.replay is not None:
        return _replay(claim.replay)
    try:
        await check_active_cap(request, principal.uid)
        queued = await create_analysis(
            request.app.state.db,
            settings.firestore_collection,
            NewAnalysis(
                user_id=principal.uid,
                video_url=body.video_url,
                dance_type=body.dance_type,
                dancers=body.dancers,
                analysis_type=body.analysis_type,
            ),
            rpc_timeout=settings.firestore_timeout_seconds,
        )
    except Exception:
        await _release(claim)
        raise
    await _publish(request, queued, "create")
    item = list_item_from_document(queued.analysis_id, queued.data)
    created = AnalysisCreated(**item.model_dump()).model_dump(mode="json")
    log.info("analysis_created", analysis_id=queued.analysis_id)
    return await _answer(claim, 201, created, {"Location": f"/analyses/{queued.analysis_id}"})


@router.post(
    "/analyses/{analysis_id}/rerun",
    status_code=202,
    response_model=RerunAccepted,
    summary="Queue a new run of an analysis (owner or admin)",
    responses={
        202: {"description": "Queued with a new generation."},
        404: {"model": ErrorBody, "description": "No such analysis (or not the caller's)."},
        409: {
            "model": ErrorBody,
            "description": "Already queued or running (current status in the body), or the "
            "same Idempotency-Key is still in flight.",
        },
        **_ERRORS,
    },
)
async def rerun(
    request: Request,
    analysis_id: Annotated[str, Path(pattern=ANALYSIS_ID_PATTERN, max_length=128)],
    principal: CurrentUser,
    key: IdempotencyKey,
    store: IdempotencyStoreDep,
) -> JSONResponse:
    settings = _settings(request)
    claim = await _claim(store, key, principal, request, body_hash(None))
    if claim is not None and claim.replay is not None:
        return _replay(claim.replay)
    try:
        await check_active_cap(request, principal.uid)
        queued = await rerun_analysis(
            request.app.state.db,
            settings.firestore_collection,
            analysis_id,
            requested_by=principal.uid,
            admin=principal.admin,
            rpc_timeout=settings.firestore_timeout_seconds,
        )
    except AnalysisNotFound as exc:
        await _release(claim)
        raise ApiError(404, "not_found", f"analysis {analysis_id} not found") from exc
    except AnalysisBusy as exc:
        await _release(claim)
        raise ApiError(
            409,
            "already_queued",
            f"analysis {analysis_id} is already {exc.status}; it was not queued again",
            extra={"status": exc.status, "generation": exc.generation},
        ) from exc
    except Exception:
        await _release(claim)
        raise
    published = await _publish(request, queued, "rerun")
    accepted = RerunAccepted(
        id=queued.analysis_id,
        status=queued.status,
        generation=queued.generation,
        published=published,
        queued_at=queued.data["updated_at"],
    ).model_dump(mode="json")
    log.info("analysis_rerun_queued", analysis_id=analysis_id, generation=queued.generation)
    return await _answer(claim, 202, accepted, {"Location": f"/analyses/{analysis_id}"})
