from __future__ import annotations

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore
from limits import parse_many
from pydantic import ValidationError

from flokraft_core.store.client import list_query
from flokraft_core.store.document import is_valid_document_id
from query_api.settings import QueryApiSettings


def test_default_rate_limit_lets_two_tabs_poll_every_3_seconds() -> None:
    needed_per_minute = 2 * 60 / 3
    for item in parse_many(QueryApiSettings().rate_limit):
        assert item.amount * 60 / item.get_expiry() >= needed_per_minute


def test_page_size_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIST_MAX_LIMIT", "200")
    monkeypatch.setenv("LIST_DEFAULT_LIMIT", "20")
    settings = QueryApiSettings()
    assert (settings.list_max_limit, settings.list_default_limit) == (200, 20)


def test_default_page_may_not_exceed_the_maximum() -> None:
    with pytest.raises(ValidationError):
        QueryApiSettings(list_default_limit=80, list_max_limit=60)


@pytest.mark.parametrize(
    ("doc_id", "valid"),
    [
        ("demo-0000001", True),
        ("aB3_x.y", True),
        ("", False),
        (".", False),
        ("..", False),
        ("a/b", False),
        ("__x__", False),
        ("x" * 1501, False),
    ],
)
def test_document_ids(doc_id: str, valid: bool) -> None:
    assert is_valid_document_id(doc_id) is valid


def test_list_query_projects_away_the_large_fields() -> None:
    client = firestore.AsyncClient(project="unit", credentials=AnonymousCredentials())
    query = list_query(
        client.collection("analyses"),
        user_id="u",
        analysis_type="couple",
        status=None,
        cursor=None,
        limit=51,
    )
    projected = {f.field_path for f in query._to_protobuf().select.fields}
    assert "text" not in projected
    assert "video_url" not in projected
    assert {"timestamp", "status", "user_id"} <= projected
