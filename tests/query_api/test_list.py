"""GET /analyses: the frontend's polled list, through real HTTP on the emulator."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

from tests.query_api.conftest import QueryApi, Writer
from tests.support.contract import LIST_FIELDS


def next_link(response) -> str | None:
    link = response.headers.get("link")
    if link is None:
        return None
    match = re.fullmatch(r'<([^>]+)>; rel="next"', link)
    assert match, link
    return match.group(1)


def test_lists_the_callers_couple_analyses_newest_first_with_list_fields_only(
    api: QueryApi, write: Writer, uid: str
) -> None:
    ids = write(uid, 5)
    write(uid, 2, analysis_type="solo", dancers=["solo"])
    write(f"{uid}-other", 3)

    response = api.get("/analyses", uid)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    rows = response.json()
    assert [r["id"] for r in rows] == list(reversed(ids))
    for row in rows:
        assert set(row) == LIST_FIELDS
        assert row["analysis_type"] == "couple"
    assert rows[0]["timestamp"].startswith("2025-03-01T12:04:00")
    assert "link" not in response.headers
    assert "x-next-page-token" not in response.headers


def test_filters_by_type_and_status(api: QueryApi, write: Writer, uid: str) -> None:
    solo = write(uid, 2, analysis_type="solo", dancers=["solo"])
    write(uid, 3)
    failed = api.db.collection("analyses").document(f"{uid}-failed")
    failed.set({**_doc(uid), "status": "failed", "processed": False})

    solo_rows = api.get("/analyses", uid, params={"analysis_type": "solo"}).json()
    assert [r["id"] for r in solo_rows] == list(reversed(solo))

    failed_rows = api.get("/analyses", uid, params={"status": "failed"}).json()
    assert [r["id"] for r in failed_rows] == [f"{uid}-failed"]


def _doc(uid: str) -> dict[str, object]:
    from tests.query_api.conftest import analysis_doc

    return analysis_doc(uid, 99)


def test_pages_through_everything_with_link_and_token_keeping_other_params(
    api: QueryApi, write: Writer, uid: str
) -> None:
    ids = write(uid, 23)
    seen: list[str] = []
    path: str | None = "/analyses?status=done&limit=10"
    pages = 0
    while path is not None:
        response = api.get(path, uid)
        assert response.status_code == 200, response.text
        seen.extend(r["id"] for r in response.json())
        pages += 1
        path = next_link(response)
        if path is not None:
            query = parse_qs(urlsplit(path).query)
            assert query["status"] == ["done"]
            assert query["limit"] == ["10"]
            assert query["page_token"] == [response.headers["x-next-page-token"]]
    assert pages == 3
    assert seen == list(reversed(ids))


def test_page_token_alone_continues_the_list(api: QueryApi, write: Writer, uid: str) -> None:
    ids = write(uid, 4)
    first = api.get("/analyses", uid, params={"limit": 2})
    token = first.headers["x-next-page-token"]
    second = api.get("/analyses", uid, params={"limit": 2, "page_token": token})
    assert [r["id"] for r in first.json() + second.json()] == list(reversed(ids))
    assert "x-next-page-token" not in second.headers


def test_exact_page_size_has_no_next_page(api: QueryApi, write: Writer, uid: str) -> None:
    write(uid, 3)
    response = api.get("/analyses", uid, params={"limit": 3})
    assert len(response.json()) == 3
    assert "link" not in response.headers


def test_another_users_list_is_refused_unless_admin(api: QueryApi, write: Writer, uid: str) -> None:
    victim = f"{uid}-victim"
    ids = write(victim, 2)

    refused = api.get("/analyses", uid, params={"user_id": victim})
    assert refused.status_code == 403
    assert refused.json()["error"]["param"] == "user_id"

    own_explicitly = api.get("/analyses", uid, params={"user_id": uid})
    assert own_explicitly.status_code == 200

    as_admin = api.get("/analyses", "boss", admin=True, params={"user_id": victim})
    assert as_admin.status_code == 200
    assert [r["id"] for r in as_admin.json()] == list(reversed(ids))


def test_etag_and_conditional_get(api: QueryApi, write: Writer, uid: str) -> None:
    ids = write(uid, 3)
    first = api.get("/analyses", uid)
    etag = first.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    assert first.headers["cache-control"] == "private, no-cache"

    for sent in (etag, f'"nope", {etag}', f"W/{etag}", "*"):
        again = api.get("/analyses", uid, headers={"If-None-Match": sent})
        assert again.status_code == 304, sent
        assert again.content == b""
        assert again.headers["etag"] == etag
        assert again.headers["cache-control"] == "private, no-cache"

    stale = api.get("/analyses", uid, headers={"If-None-Match": '"something-else"'})
    assert stale.status_code == 200
    assert stale.json() == first.json()

    # A change to a listed field changes the tag, so the poller sees it.
    api.db.collection("analyses").document(ids[2]).update({"status": "running"})
    changed = api.get("/analyses", uid, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    assert changed.json()[0]["status"] == "running"


def test_large_fields_never_change_the_list(api: QueryApi, write: Writer, uid: str) -> None:
    ids = write(uid, 2)
    before = api.get("/analyses", uid)
    api.db.collection("analyses").document(ids[1]).update(
        {"text": "rewritten " * 2000, "video_url": "gs://elsewhere/x.mp4"}
    )
    after = api.get("/analyses", uid, headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 304


def test_admin_list_filters_and_pages(api: QueryApi, write: Writer, uid: str) -> None:
    mine = write(uid, 3, status="queued", processed=False, total_score=None)
    write(f"{uid}-b", 2, status="queued", analysis_type="solo")

    by_user = api.get("/admin/analyses", "boss", admin=True, params={"user_id": uid})
    assert [r["id"] for r in by_user.json()] == list(reversed(mine))

    solo = api.get(
        "/admin/analyses",
        "boss",
        admin=True,
        params={"user_id": f"{uid}-b", "analysis_type": "solo", "status": "queued"},
    )
    assert len(solo.json()) == 2

    first = api.get("/admin/analyses", "boss", admin=True, params={"limit": 2})
    assert first.status_code == 200
    assert len(first.json()) == 2
    assert first.headers["link"].startswith("</admin/analyses?limit=2&page_token=")
    second = api.get(
        "/admin/analyses" + "?" + first.headers["link"][1:-13].split("?", 1)[1], "boss", admin=True
    )
    assert second.status_code == 200
    assert {r["id"] for r in first.json()}.isdisjoint(r["id"] for r in second.json())


def test_admin_route_needs_the_admin_claim(api: QueryApi, uid: str) -> None:
    response = api.get("/admin/analyses", uid)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
