"""GET /analyses/{id}: owner or admin only; someone else's is indistinguishable from none."""

from __future__ import annotations

from tests.query_api.conftest import QueryApi, Writer
from tests.support.contract import DETAIL_FIELDS


def test_owner_sees_the_detail_without_video_url(api: QueryApi, write: Writer, uid: str) -> None:
    [doc_id] = write(uid, 1, progress=0.4, status="running", error=None)
    response = api.get(f"/analyses/{doc_id}", uid)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == DETAIL_FIELDS
    assert body["id"] == doc_id
    assert body["text"].startswith("report ")
    assert body["progress"] == 0.4
    assert body["status"] == "running"
    assert "video_url" not in response.text
    assert "gs://" not in response.text
    assert response.headers["cache-control"] == "private, no-cache"

    cached = api.get(
        f"/analyses/{doc_id}", uid, headers={"If-None-Match": response.headers["etag"]}
    )
    assert cached.status_code == 304
    assert cached.content == b""

    api.db.collection("analyses").document(doc_id).update({"progress": 0.9})
    moved = api.get(f"/analyses/{doc_id}", uid, headers={"If-None-Match": response.headers["etag"]})
    assert moved.status_code == 200
    assert moved.json()["progress"] == 0.9


def test_someone_elses_analysis_is_404_exactly_like_a_missing_one(
    api: QueryApi, write: Writer, uid: str
) -> None:
    [doc_id] = write(f"{uid}-owner", 1)
    foreign = api.get(f"/analyses/{doc_id}", uid)
    missing = api.get(f"/analyses/{doc_id}-nothing", uid)
    assert foreign.status_code == missing.status_code == 404
    strip = lambda r: {k: v for k, v in r.json()["error"].items() if k != "request_id"}  # noqa: E731
    assert strip(foreign) == strip(missing)
    assert foreign.headers.get("content-length") == missing.headers.get("content-length")


def test_admin_sees_any_analysis(api: QueryApi, write: Writer, uid: str) -> None:
    [doc_id] = write(uid, 1)
    response = api.get(f"/analyses/{doc_id}", "boss", admin=True)
    assert response.status_code == 200
    assert response.json()["id"] == doc_id


def test_ids_with_dots_are_found(api: QueryApi, write: Writer, uid: str) -> None:
    [doc_id] = write(uid, 1)
    dotted = f"{doc_id}.v2"
    data = api.db.collection("analyses").document(doc_id).get().to_dict()
    api.db.collection("analyses").document(dotted).set(data)
    response = api.get(f"/analyses/{dotted}", uid)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == dotted


def test_ids_firestore_reserves_are_422_like_rerun_api(api: QueryApi, uid: str) -> None:
    response = api.get("/analyses/__x__", uid)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == "analysis_id"
