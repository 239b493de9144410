"""POST /analyses and POST /analyses/{id}/rerun: record the intent, then queue the job.

Nothing here runs an analysis. The Firestore transaction (the analysis with its outbox
marker, the owner's active set, and the Idempotency-Key's record) comes first; the publish
after it may fail or time out without failing the request, because the reconciler
(rerun_api.outbox) publishes whatever is still marked. A 503 means the transaction's
outcome is unknown: retried with the same Idempotency-Key, the request can never act twice
(rerun_api.idempotency).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Final

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from flokraft_core.logs import get_logger
from flokraft_core.store.document import Fields, Status, list_item_from_document
from flokraft_core.web.errors import STANDARD_ERRORS, ApiError, error_responses
from flokraft_core.web.params import AnalysisIdPath
from flokraft_core.web.security import AdminUser, CurrentUser
from rerun_api.active_cap import too_many_active
from rerun_api.commands import (
    AnalysisBusy,
    AnalysisExists,
    AnalysisNotFound,
    AtActiveCap,
    NewAnalysis,
    QueuedAnalysis,
)
from rerun_api.dependencies import (
    Commands,
    Idempotency,
    IdempotencyScope,
    Lifecycle,
    PublishJob,
    Settings,
    VideoOwner,
)
from rerun_api.idempotency import REPLAYED_HEADER, KeyReceipt, StoredAnswer, body_hash, mismatch
from rerun_api.lifecycle import AnalysisFinished, Stopped
from rerun_api.schemas import (
    AnalysisCreated,
    CancelAccepted,
    CreateAnalysisRequest,
    FailAccepted,
    FailRequest,
    RerunAccepted,
    is_file_url,
)

log = get_logger(__name__)

_ERRORS: Final = {
    **STANDARD_ERRORS,
    **error_responses(
        {
            400: "The body could not be parsed at all.",
            403: "The token lacks a needed right.",
            429: "Rate limit exceeded (`rate_limited`), or the caller already has "
            "MAX_ACTIVE_ANALYSES_PER_USER analyses queued or running (`too_many_active`); "
            "see Retry-After.",
            503: "Firestore did not answer in time: the write may have landed. Retry with "
            "the same Idempotency-Key; it can never act twice.",
        }
    ),
}

# The headers of a create's 201 and a rerun's 202.
ACCEPTED_HEADERS: Final = {
    "Location": {
        "description": "The analysis: `/analyses/{id}` (query-api serves it).",
        "schema": {"type": "string"},
        "required": True,
    },
    REPLAYED_HEADER: {
        "description": "`true` when the answer is the stored one of an earlier request "
        "with the same Idempotency-Key.",
        "schema": {"type": "string", "const": "true"},
    },
}

# What a client can do next with the analysis a create answered (OpenAPI links: generators
# and stateful fuzzers follow them).
CREATED_LINKS: Final = {
    name: {
        "operationId": name,
        "parameters": {"analysis_id": "$response.body#/id"},
        "description": description,
    }
    for name, description in (
        ("rerunAnalysis", "Run the new analysis again."),
        ("cancelAnalysis", "Stop it."),
        ("deleteAnalysis", "Delete it."),
    )
}

router = APIRouter(tags=["analyses"])


@router.post(
    "/analyses",
    status_code=201,
    response_model=AnalysisCreated,
    summary="Create an analysis and queue its job",
    responses={
        201: {
            "description": "Queued; `Location` points at the analysis. A retry with the "
            "same Idempotency-Key gets the same answer (`Idempotent-Replayed: true`).",
            "headers": ACCEPTED_HEADERS,
            "links": CREATED_LINKS,
        },
        **_ERRORS,
        **error_responses(
            {
                409: "An earlier release of the service still holds the Idempotency-Key.",
                410: "The analysis this Idempotency-Key created was deleted since; the key "
                "cannot be used again (`analysis_deleted`).",
            }
        ),
    },
)
async def create_analysis(
    principal: VideoOwner,
    body: CreateAnalysisRequest,
    once: IdempotencyScope,
    commands: Commands,
    publish: PublishJob,
    settings: Settings,
) -> JSONResponse:
    if is_file_url(body.video_url) and not settings.allow_file_urls:
        raise ApiError(
            422,
            "invalid_argument",
            "video_url: file:// URLs are not accepted here; use gs:// or https://",
            param="video_url",
        )
    request_hash = body_hash(body.model_dump(mode="json"))
    receipt = once(request_hash, _created_answer)
    try:
        queued = await commands.create(
            NewAnalysis(
                user_id=principal.uid,
                video_url=body.video_url,
                dance_type=body.dance_type,
                dancers=body.dancers,
                analysis_type=body.analysis_type,
            ),
            analysis_id=None if receipt is None else receipt.analysis_id,
            active_cap=settings.max_active_analyses_per_user,
            receipt=receipt,
        )
    except AtActiveCap as exc:
        raise too_many_active(exc) from exc
    except AnalysisExists as exc:
        # The key's analysis exists but its record is gone (expired): answer from it.
        if _request_hash_of(exc.data) != request_hash:
            raise mismatch() from exc
        log.info("analysis_create_replayed_from_document", analysis_id=exc.analysis_id)
        return _answer_from_document(exc.analysis_id, exc.data).response()
    if queued is None:
        return _replayed(receipt)
    await publish(queued, "create")
    log.info("analysis_created", analysis_id=queued.analysis_id)
    answer = receipt.stored if receipt is not None and receipt.stored else _created_answer(queued)
    return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)


def _answer_from_document(analysis_id: str, data: dict[str, Any]) -> StoredAnswer:
    item = list_item_from_document(analysis_id, data)
    created = AnalysisCreated(**item.model_dump()).model_dump(mode="json")
    return StoredAnswer(201, created, {"Location": f"/analyses/{analysis_id}"})


def _created_answer(queued: QueuedAnalysis) -> StoredAnswer:
    return _answer_from_document(queued.analysis_id, queued.data)


def _request_hash_of(data: dict[str, Any]) -> str | None:
    """The hash of the create request that wrote `data` (its fields are never changed)."""
    try:
        request = CreateAnalysisRequest.model_validate(
            {
                "video_url": data.get(Fields.VIDEO_URL),
                "dance_type": data.get(Fields.DANCE_TYPE),
                "dancers": data.get(Fields.DANCERS),
                "analysis_type": data.get(Fields.ANALYSIS_TYPE),
            }
        )
    except ValidationError:
        return None
    return body_hash(request.model_dump(mode="json"))


@router.post(
    "/analyses/{analysis_id}/rerun",
    status_code=202,
    response_model=RerunAccepted,
    summary="Queue a new run of an analysis (owner; an admin also of stuck work)",
    responses={
        202: {
            "description": "Queued with a new generation. A retry with the same "
            "Idempotency-Key gets the same answer (`Idempotent-Replayed: true`).",
            "headers": ACCEPTED_HEADERS,
        },
        **_ERRORS,
        **error_responses(
            {
                404: "No such analysis (or not the caller's).",
                409: "Already queued or running (current status in the body; also what a "
                "retry without an Idempotency-Key gets after a 503 whose write landed), or "
                "an earlier release of the service still holds the Idempotency-Key. Only "
                "the owner gets this: an admin's rerun of queued or running work (stuck "
                "work) is accepted and queues a new generation, which fences off the old "
                "run's writes.",
                410: "The Idempotency-Key was used on this analysis before it was deleted.",
            }
        ),
    },
)
async def rerun_analysis(
    analysis_id: AnalysisIdPath,
    principal: CurrentUser,
    once: IdempotencyScope,
    commands: Commands,
    publish: PublishJob,
    settings: Settings,
) -> JSONResponse:
    receipt = once(body_hash(None), _accepted_answer)
    try:
        queued = await commands.rerun(
            analysis_id,
            requested_by=principal.uid,
            admin=principal.admin,
            active_cap=settings.max_active_analyses_per_user,
            receipt=receipt,
        )
    except AnalysisNotFound as exc:
        raise ApiError(404, "not_found", f"analysis {analysis_id} not found") from exc
    except AnalysisBusy as exc:
        raise ApiError(
            409,
            "already_queued",
            f"analysis {analysis_id} is already {exc.status}; it was not queued again",
            extra={"status": exc.status, "generation": exc.generation},
        ) from exc
    except AtActiveCap as exc:
        raise too_many_active(exc) from exc
    if queued is None:
        return _replayed(receipt)
    published = await publish(queued, "rerun")
    if published and receipt is not None:
        await receipt.amend({"published": True})
    answer = _accepted_answer(queued, published=published)
    log.info(
        "analysis_rerun_queued",
        analysis_id=analysis_id,
        generation=queued.generation,
        requested_by=principal.uid,
        admin=principal.admin,
    )
    return JSONResponse(answer.body, status_code=answer.status, headers=answer.headers)


def _accepted_answer(queued: QueuedAnalysis, *, published: bool = False) -> StoredAnswer:
    # Stored before the publish (in the transaction) with published false, then amended.
    accepted = RerunAccepted(
        id=queued.analysis_id,
        status=queued.status,
        generation=queued.generation,
        published=published,
        queued_at=queued.data[Fields.UPDATED_AT],
    ).model_dump(mode="json")
    return StoredAnswer(202, accepted, {"Location": f"/analyses/{queued.analysis_id}"})


def _replayed(receipt: KeyReceipt | None) -> JSONResponse:
    """A command returns None only when the receipt held a stored answer."""
    if receipt is None or receipt.replay is None:
        raise RuntimeError("the command wrote nothing, yet there is no answer to replay")
    return receipt.replay.response()


# --- Cancel, fail (admin) and delete --------------------------------------------------------
# No Idempotency-Key: each is idempotent by what it does (a repeated cancel or fail answers
# the stopped analysis again, a repeated delete 204 or 404) and writes nothing on a repeat.


@router.post(
    "/analyses/{analysis_id}/cancel",
    status_code=200,
    response_model=CancelAccepted,
    summary="Stop a queued or running analysis (owner or admin)",
    responses={
        200: {
            "description": "Cancelled (or already was). A running job's worker stops the "
            "analysis within a few seconds; its result never lands."
        },
        **STANDARD_ERRORS,
        **error_responses(
            {
                403: "The token lacks a needed right.",
                404: "No such analysis (or not the caller's).",
                409: "Already finished (done or failed, or written by the old backend "
                "without a status); the current status is in the body.",
                503: "Firestore is unavailable; retry (a cancel that timed out may have "
                "landed, and a repeat answers the same).",
            }
        ),
    },
)
async def cancel_analysis(
    analysis_id: AnalysisIdPath, principal: CurrentUser, lifecycle: Lifecycle
) -> CancelAccepted:
    cancelled = await _stopped(
        analysis_id,
        "cancel",
        lifecycle.cancel(analysis_id, uid=principal.uid, admin=principal.admin),
    )
    if cancelled.changed:
        log.info("analysis_cancelled", analysis_id=analysis_id, generation=cancelled.generation)
    return CancelAccepted(
        id=analysis_id,
        status=Status.CANCELLED,
        generation=cancelled.generation,
        cancelled_at=cancelled.at,
    )


@router.post(
    "/analyses/{analysis_id}/fail",
    status_code=200,
    response_model=FailAccepted,
    summary="End a stuck analysis as failed, with a reason its owner reads (admin)",
    responses={
        200: {
            "description": "Failed (or already was: the stored reason is returned). A "
            "running job's worker stops within a few seconds; nothing it still writes "
            "lands. This releases the owner's place in the active cap; the owner may "
            "rerun it. To start stuck work again instead, an admin reruns it (202)."
        },
        **STANDARD_ERRORS,
        **error_responses(
            {
                400: "The body could not be parsed at all.",
                403: "The token lacks the admin claim.",
                404: "No such analysis.",
                409: "Not queued or running (done or cancelled, or written by the old "
                "backend without a status); the current status is in the body.",
                503: "Firestore is unavailable; retry (a fail that timed out may have "
                "landed, and a repeat answers the same).",
            }
        ),
    },
)
async def fail_analysis(
    analysis_id: AnalysisIdPath, body: FailRequest, principal: AdminUser, lifecycle: Lifecycle
) -> FailAccepted:
    failed = await _stopped(
        analysis_id,
        "fail",
        lifecycle.fail(analysis_id, reason=body.reason, admin_uid=principal.uid),
    )
    if failed.changed:
        log.warning(
            "analysis_failed_by_admin",
            analysis_id=analysis_id,
            generation=failed.generation,
            admin=principal.uid,
        )
    return FailAccepted(
        id=analysis_id,
        status=Status.FAILED,
        generation=failed.generation,
        failed_at=failed.at,
        error=failed.error,
    )


async def _stopped(analysis_id: str, what: str, stopping: Awaitable[Stopped]) -> Stopped:
    """Awaits a cancel or fail, answering 404 and 409 (`already_finished`) for it."""
    try:
        return await stopping
    except AnalysisNotFound as exc:
        raise ApiError(404, "not_found", f"analysis {analysis_id} not found") from exc
    except AnalysisFinished as exc:
        raise ApiError(
            409,
            "already_finished",
            f"analysis {analysis_id} is already {exc.status}; there is nothing to {what}",
            extra={"status": exc.status, "generation": exc.generation},
        ) from exc


@router.delete(
    "/analyses/{analysis_id}",
    status_code=204,
    summary="Delete an analysis (owner or admin); its video stays in storage",
    responses={
        204: {
            "description": "Deleted. A running job is stopped and nothing it still writes "
            "brings the analysis back. A retry of the request that created it (or of a "
            "keyed rerun of it) with the same Idempotency-Key then answers 410 "
            "`analysis_deleted`."
        },
        **STANDARD_ERRORS,
        **error_responses(
            {
                403: "The token lacks a needed right.",
                404: "No such analysis (or not the caller's); a repeated delete answers this.",
                503: "Firestore is unavailable; retry (a delete that timed out may have "
                "landed: a 404 on the retry then means it is gone).",
            }
        ),
    },
)
async def delete_analysis(
    analysis_id: AnalysisIdPath,
    principal: CurrentUser,
    lifecycle: Lifecycle,
    records: Idempotency,
) -> Response:
    try:
        await lifecycle.delete(
            analysis_id, uid=principal.uid, admin=principal.admin, records=records
        )
    except AnalysisNotFound as exc:
        raise ApiError(404, "not_found", f"analysis {analysis_id} not found") from exc
    log.info("analysis_deleted", analysis_id=analysis_id)
    return Response(status_code=204)
