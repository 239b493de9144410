"""`GET /admin/analyses`: every user's analyses, for the admin panel (admin claim only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from flokraft_core.analyses import AnalysisListItem, AnalysisType, Status
from flokraft_core.analysis_reads import ListFilters
from flokraft_core.web.errors import error_responses
from flokraft_core.web.security import AdminUser
from query_api.dependencies import PageSize, PageTokenKey, Reads, Settings
from query_api.listing import page_response
from query_api.params import (
    NEXT_PAGE_DESCRIPTION,
    NEXT_PAGE_PATTERN,
    PAGE_TOKEN_MAX_LENGTH,
    USER_ID_PATTERN,
)
from query_api.responses import COMMON_RESPONSES, PAGE_HEADERS, next_page_link

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get(
    "/analyses",
    response_model=list[AnalysisListItem],
    summary="All analyses, newest first, one page (admin)",
    responses={
        **COMMON_RESPONSES,
        200: {
            "description": "One page of list rows.",
            "headers": PAGE_HEADERS,
            "links": next_page_link("listAllAnalyses"),
        },
        **error_responses(
            {
                400: "page_token is not one this API issued for this list.",
                403: "The token has no admin claim.",
            }
        ),
    },
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
    page_token: Annotated[
        str | None,
        Query(
            max_length=PAGE_TOKEN_MAX_LENGTH,
            description=NEXT_PAGE_DESCRIPTION,
            json_schema_extra={"pattern": NEXT_PAGE_PATTERN},
        ),
    ] = None,
) -> Response:
    filters = ListFilters(
        user_id=user_id,
        analysis_type=None if analysis_type is None else analysis_type.value,
        status=None if status is None else status.value,
    )
    return await page_response(
        request, reads, settings, token_key, filters, limit=limit, page_token=page_token
    )
