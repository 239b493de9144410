"""The one page query behind `GET /analyses` and `GET /admin/analyses`: decode the cursor,
read one bounded page, serialize it, and answer with ETag, Link and next-page headers."""

from __future__ import annotations

from fastapi import Request, Response
from prometheus_client import Counter
from pydantic import TypeAdapter

from flokraft_core.analyses import AnalysisListItem
from flokraft_core.analysis_reads import AnalysisReads, InvalidCursor, ListFilters
from flokraft_core.logs import get_logger
from flokraft_core.page_tokens import (
    InvalidPageToken,
    decode_page_token,
    encode_page_token,
    list_binding,
)
from flokraft_core.web.errors import ApiError
from query_api.etag import none_match
from query_api.responses import cache_headers
from query_api.settings import QueryApiSettings

log = get_logger(__name__)

_ITEMS = TypeAdapter(list[AnalysisListItem])

FULL_PAGES = Counter(
    "query_api_full_pages_total",
    "List pages that came back full at the maximum page size (a client paging through "
    "everything, or a limit that is too small).",
    ["route"],
)


def _invalid_token(message: str) -> ApiError:
    return ApiError(400, "invalid_argument", f"page_token: {message}", param="page_token")


def conditional_json(request: Request, body: bytes, headers: dict[str, str]) -> Response:
    """200 with the body, or 304 without it when the client's If-None-Match is current."""
    if none_match(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


async def page_response(
    request: Request,
    reads: AnalysisReads,
    settings: QueryApiSettings,
    filters: ListFilters,
    *,
    limit: int,
    page_token: str | None,
) -> Response:
    # Bound to who asks and which list: a token is only good for the list it came from.
    binding = list_binding(
        getattr(request.state, "uid", ""),
        filters.user_id,
        filters.analysis_type,
        filters.status,
        str(request.url.path),
    )
    secret: bytes = request.app.state.page_token_key
    cursor = None
    if page_token is not None:
        try:
            cursor = decode_page_token(page_token, secret=secret, binding=binding)
        except InvalidPageToken as exc:
            raise _invalid_token(str(exc)) from exc
    try:
        page = await reads.list_page(filters, cursor=cursor, limit=limit)
    except InvalidCursor as exc:
        raise _invalid_token("page_token names no valid position") from exc

    if len(page.items) >= settings.list_max_limit:
        FULL_PAGES.labels(route=request.url.path).inc()
        log.warning(
            "list_page_full_at_max",
            limit=limit,
            user_id=filters.user_id,
            analysis_type=filters.analysis_type,
            status=filters.status,
            more=page.next_cursor is not None,
        )

    body = _ITEMS.dump_json(page.items)
    headers = cache_headers(body)
    if page.next_cursor is not None:
        token = encode_page_token(page.next_cursor, secret=secret, binding=binding)
        next_url = request.url.include_query_params(page_token=token)
        # A relative reference (RFC 8288 allows it): behind the ingress the scheme and host
        # this process sees are not the ones the browser used.
        headers["Link"] = f'<{next_url.path}?{next_url.query}>; rel="next"'
        headers["X-Next-Page-Token"] = token
    return conditional_json(request, body, headers)
