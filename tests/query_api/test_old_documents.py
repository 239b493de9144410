"""Documents written by the old Flask backend list and display without error."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.query_api.conftest import QueryApi


def test_old_backend_documents_list_and_show(api: QueryApi, uid: str) -> None:
    col = api.db.collection("analyses")
    # Exactly what the old backend wrote: no generation, progress, error, created_at...
    col.document(f"{uid}-old1").set(
        {
            "user_id": uid,
            "timestamp": datetime(2024, 5, 1, 10, 0, tzinfo=UTC),
            "dance_type": "tango",
            "dancers": ["A", "B"],
            "analysis_type": "couple",
            "processed": True,
            "status": "done",
            "total_score": 77,
            "text": "old report " * 1000,
            "video_url": "https://old.example/video.mp4",
        }
    )
    # Sloppier ones: a naive datetime, a score as a string, dancers as one string, no status.
    col.document(f"{uid}-old2").set(
        {
            "user_id": uid,
            "timestamp": datetime(2024, 4, 1, 9, 0),
            "dance_type": "waltz",
            "dancers": "Ann & Bo",
            "analysis_type": "couple",
            "total_score": "81.5",
            "video_url": "file:///tmp/x.mp4",
        }
    )
    # A string timestamp (sorts before Firestore timestamps in Firestore's type order).
    col.document(f"{uid}-old3").set(
        {
            "user_id": uid,
            "timestamp": "2024-03-01T08:00:00Z",
            "analysis_type": "couple",
            "processed": False,
        }
    )
    # No timestamp at all: Firestore leaves it out of ordered queries; detail still works.
    col.document(f"{uid}-old4").set({"user_id": uid, "analysis_type": "couple"})

    response = api.get("/analyses", uid)
    assert response.status_code == 200, response.text
    rows = {r["id"]: r for r in response.json()}
    assert set(rows) == {f"{uid}-old1", f"{uid}-old2", f"{uid}-old3"}
    assert rows[f"{uid}-old1"]["total_score"] == 77.0
    assert rows[f"{uid}-old1"]["timestamp"].startswith("2024-05-01T10:00:00")
    assert rows[f"{uid}-old2"]["dancers"] == "Ann & Bo"
    assert rows[f"{uid}-old2"]["total_score"] == 81.5
    assert rows[f"{uid}-old2"]["processed"] is False
    assert rows[f"{uid}-old2"]["status"] is None
    assert rows[f"{uid}-old3"]["timestamp"].startswith("2024-03-01T08:00:00")

    for suffix in ("old1", "old2", "old3", "old4"):
        detail = api.get(f"/analyses/{uid}-{suffix}", uid)
        assert detail.status_code == 200, (suffix, detail.text)
        body = detail.json()
        assert body["progress"] is None
        assert body["error"] is None
        assert "video_url" not in body
    assert api.get(f"/analyses/{uid}-old1", uid).json()["text"].startswith("old report")


def test_old_documents_page_like_new_ones(api: QueryApi, uid: str) -> None:
    col = api.db.collection("analyses")
    for day in range(1, 6):
        col.document(f"{uid}-d{day}").set(
            {
                "user_id": uid,
                "timestamp": datetime(2024, 1, day, tzinfo=UTC),
                "analysis_type": "couple",
                "status": "done",
            }
        )
    first = api.get("/analyses", uid, params={"limit": 3})
    second = api.get(
        "/analyses", uid, params={"limit": 3, "page_token": first.headers["x-next-page-token"]}
    )
    ids = [r["id"] for r in first.json() + second.json()]
    assert ids == [f"{uid}-d{day}" for day in range(5, 0, -1)]
