"""`GET /admin/analyses`: every user's analyses, for the admin panel (admin claim only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from flokraft_core.store.document import AnalysisListItem, AnalysisType, Status
from flokraft_core.web.security import AdminUser
from query_api.dependencies import PageSize, PageTokenKey, Reads, Settings
from query_api.listing import page_response
from query_api.params import USER_ID_PATTERN, PageToken
from query_api.reads import ListFilters
from query_api.responses import page_responses

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get(
    "/analyses",
    response_model=list[AnalysisListItem],
    summary="All analyses, newest first, one page (admin)",
    responses=page_responses("listAllAnalyses", "The token has no admin claim."),
)
async def list_all_analyses(
    request: Request,
    _admin: AdminUser,
    reads: Reads,
    settings: Settings,
    token_key: PageTokenKey,
    limit: PageSize,
    user_id: Annotated[str | None, Query(pattern=USER_ID_PATTERN)] = None,
    status: Status | None = None,
    analysis_type: AnalysisType | None = None,
    page_token: PageToken = None,
) -> Response:
    filters = ListFilters(
        user_id=user_id,
        analysis_type=None if analysis_type is None else analysis_type.value,
        status=None if status is None else status.value,
    )
    return await page_response(
        request, reads, settings, token_key, filters, limit=limit, page_token=page_token
    )
