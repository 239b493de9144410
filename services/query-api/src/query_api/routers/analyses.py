"""`GET /analyses` (the frontend's polled list) and `GET /analyses/{id}` (the detail)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from flokraft_core.store.document import AnalysisDetail, AnalysisListItem, AnalysisType, Status
from flokraft_core.web.errors import ApiError, error_responses
from flokraft_core.web.params import AnalysisIdPath
from flokraft_core.web.security import CurrentUser
from query_api.dependencies import PageSize, PageTokenKey, Reads, Settings, Versions
from query_api.etag import strong_etag
from query_api.listing import conditional_json, user_page_response
from query_api.params import USER_ID_PATTERN, PageToken
from query_api.reads import ListFilters
from query_api.responses import CACHE_HEADERS, COMMON_RESPONSES, cache_headers, page_responses

_NOT_FOUND = "no analysis with this id"

router = APIRouter(prefix="/analyses", tags=["analyses"])


@router.get(
    "",
    response_model=list[AnalysisListItem],
    summary="The caller's analyses, newest first, one page",
    responses=page_responses("listAnalyses", "user_id names another user."),
)
async def list_analyses(
    request: Request,
    user: CurrentUser,
    reads: Reads,
    versions: Versions,
    settings: Settings,
    token_key: PageTokenKey,
    limit: PageSize,
    analysis_type: AnalysisType = AnalysisType.COUPLE,
    user_id: Annotated[
        str | None,
        Query(pattern=USER_ID_PATTERN, description="Defaults to the caller; admin only."),
    ] = None,
    status: Status | None = None,
    page_token: PageToken = None,
) -> Response:
    owner = user.uid if user_id is None else user_id
    if owner != user.uid and not user.admin:
        raise ApiError(
            403,
            "permission_denied",
            "user_id: only admins may list another user's analyses",
            param="user_id",
        )
    filters = ListFilters(
        user_id=owner,
        analysis_type=analysis_type.value,
        status=None if status is None else status.value,
    )
    return await user_page_response(
        request,
        reads,
        versions,
        settings,
        token_key,
        filters,
        limit=limit,
        page_token=page_token,
    )


@router.get(
    "/{analysis_id}",
    response_model=AnalysisDetail,
    summary="One analysis with its report (owner or admin)",
    responses={
        **COMMON_RESPONSES,
        200: {"description": "The analysis.", "headers": CACHE_HEADERS},
        **error_responses({404: "No such analysis, or it belongs to someone else."}),
    },
)
async def get_analysis(
    request: Request,
    user: CurrentUser,
    reads: Reads,
    analysis_id: AnalysisIdPath,
) -> Response:
    found = await reads.get_detail(analysis_id, owner=None if user.admin else user.uid)
    # Someone else's analysis answers exactly like a missing one: existence must not leak.
    if found is None or (found.owner != user.uid and not user.admin):
        raise ApiError(404, "not_found", _NOT_FOUND, param="analysis_id")
    body = found.detail.model_dump_json().encode()
    return conditional_json(request, body, cache_headers(strong_etag(body)))
