"""Every bad parameter gets a 4xx JSON error naming it; nothing a client sends is a 500."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from tests.query_api.conftest import QueryApi, Writer


def forged_but_checksummed(doc_id: str) -> str:
    """A token with the unkeyed checksum of the old scheme and a hostile position: without
    the server's secret no valid signature can be made, so it is refused as forged."""
    payload = json.dumps(
        {"v": 1, "ts": "2025-03-01T12:00:00.000000Z", "id": doc_id},
        separators=(",", ":"),
        sort_keys=True,
    ).encode()
    raw = payload + b"." + hashlib.sha256(payload).hexdigest()[:12].encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    ("params", "param", "status"),
    [
        ({"limit": "0"}, "limit", 422),
        ({"limit": "101"}, "limit", 422),
        ({"limit": "abc"}, "limit", 422),
        ({"limit": "-5"}, "limit", 422),
        ({"limit": "1.5"}, "limit", 422),
        ({"analysis_type": "trio"}, "analysis_type", 422),
        ({"analysis_type": ""}, "analysis_type", 422),
        ({"status": "exploded"}, "status", 422),
        ({"user_id": "../../etc"}, "user_id", 422),
        ({"user_id": "x" * 129}, "user_id", 422),
        ({"page_token": "not-a-token"}, "page_token", 400),
        ({"page_token": ""}, "page_token", 400),
        ({"page_token": "A" * 513}, "page_token", 422),
        ({"page_token": forged_but_checksummed("__reserved__")}, "page_token", 400),
        ({"page_token": forged_but_checksummed("x" * 2000)}, "page_token", 422),
    ],
)
def test_bad_list_parameters_name_the_parameter(
    api: QueryApi, uid: str, params: dict[str, str], param: str, status: int
) -> None:
    for path in ("/analyses", "/admin/analyses"):
        response = api.get(path, uid, admin=True, params=params)
        assert response.status_code == status, (path, response.text)
        error = response.json()["error"]
        assert error["param"] == param
        assert error["code"] == "invalid_argument"
        assert param in error["message"]
        assert error["request_id"] == response.headers["x-request-id"]


def test_truncated_real_token_is_refused(api: QueryApi, write: Writer, uid: str) -> None:
    write(uid, 3)
    token = api.get("/analyses", uid, params={"limit": 1}).headers["x-next-page-token"]
    for broken in (token[:-3], token[:10], token + "x", token.swapcase()):
        response = api.get("/analyses", uid, params={"page_token": broken})
        assert response.status_code == 400, broken
        assert response.json()["error"]["param"] == "page_token"


def test_token_from_another_users_list_is_refused(api: QueryApi, write: Writer, uid: str) -> None:
    other = f"{uid}-o"
    write(other, 3)
    write(uid, 2)
    token = api.get("/analyses", other, params={"limit": 1}).headers["x-next-page-token"]
    response = api.get("/analyses", uid, params={"page_token": token})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "page_token"


def test_limit_bounds_are_inclusive(api: QueryApi, write: Writer, uid: str) -> None:
    write(uid, 2)
    assert api.get("/analyses", uid, params={"limit": 1}).status_code == 200
    assert api.get("/analyses", uid, params={"limit": 100}).status_code == 200


@pytest.mark.parametrize("bad_id", ["a" * 200, ".hidden", "a b", "__reserved__"])
def test_bad_or_reserved_detail_ids_are_4xx(api: QueryApi, uid: str, bad_id: str) -> None:
    response = api.get(f"/analyses/{bad_id}", uid)
    assert response.status_code in (404, 422), response.text
    assert response.json()["error"]["param"] == "analysis_id"


def test_unknown_route_is_json_404(api: QueryApi, uid: str) -> None:
    response = api.get("/nope", uid)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
