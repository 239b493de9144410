"""Pure validation rules of rerun-api: video URLs, Idempotency-Keys and request hashing."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flokraft_core.web.errors import ApiError
from rerun_api.idempotency import body_hash, record_id, validate_key
from rerun_api.schemas import CreateAnalysisRequest, is_file_url, url_problem


@pytest.mark.parametrize(
    "url",
    [
        "gs://bucket/videos/clip.mp4",
        "https://cdn.example.com/v/clip.mp4?token=abc",
        "https://user@host:8443/a%20b.mp4",
        "file:///tmp/clip.mp4",
    ],
)
def test_accepted_urls(url: str) -> None:
    assert url_problem(url) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://host/clip.mp4",
        "ftp://host/clip.mp4",
        "gs://bucket",
        "gs://bucket/",
        "https:///clip.mp4",
        "https://host/a b.mp4",
        "https://hôst/clip.mp4",
        "GS://bucket/clip.mp4",
        "file://",
        "javascript:alert(1)",
        "https://host/clip.mp4\n",
    ],
)
def test_rejected_urls(url: str) -> None:
    assert url_problem(url) is not None


def test_file_urls_are_recognised_for_the_profile_switch() -> None:
    assert is_file_url("file:///tmp/x.mp4")
    assert not is_file_url("gs://b/file:///x")


def test_request_model_strips_and_bounds_text() -> None:
    request = CreateAnalysisRequest.model_validate(
        {
            "video_url": "gs://b/c.mp4",
            "dance_type": "  salsa ",
            "dancers": [" lead", "follow "],
            "analysis_type": "couple",
        }
    )
    assert (request.dance_type, request.dancers) == ("salsa", ["lead", "follow"])
    with pytest.raises(ValidationError):
        CreateAnalysisRequest.model_validate(
            {"video_url": "gs://b/c.mp4", "dance_type": "x", "dancers": [], "analysis_type": "solo"}
        )


@pytest.mark.parametrize("key", ["a", "key-123", "with inner space", "~" * 255])
def test_valid_idempotency_keys(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize("key", ["", " leading", "trailing ", "x" * 256, "tab\tkey", "ü", "key\n"])
def test_invalid_idempotency_keys_name_the_header(key: str) -> None:
    with pytest.raises(ApiError) as caught:
        validate_key(key)
    assert (caught.value.status, caught.value.param) == (422, "Idempotency-Key")


def test_record_ids_separate_users_methods_paths_and_keys() -> None:
    ids = {
        record_id("u1", "POST", "/analyses", "k"),
        record_id("u2", "POST", "/analyses", "k"),
        record_id("u1", "POST", "/analyses/x/rerun", "k"),
        record_id("u1", "POST", "/analyses", "k2"),
        # The separator keeps ("ab", "c") and ("a", "bc") apart.
        record_id("u1a", "POST", "/analyses", "k"),
    }
    assert len(ids) == 5


def test_body_hash_ignores_key_order_but_not_values() -> None:
    assert body_hash({"a": 1, "b": [1, 2]}) == body_hash({"b": [1, 2], "a": 1})
    assert body_hash({"a": 1}) != body_hash({"a": 2})
    assert body_hash(None) != body_hash({})


VALID = {"video_url": "gs://b/c.mp4", "dance_type": "salsa", "dancers": "duo"}


def test_lengths_are_checked_on_what_was_sent_before_stripping() -> None:
    # 101 characters whose first is whitespace: the schema says maxLength 100, so refused
    # (found by schemathesis: stripping first accepted it).
    def check(**fields: object) -> CreateAnalysisRequest:
        return CreateAnalysisRequest.model_validate({**VALID, "analysis_type": "couple", **fields})

    with pytest.raises(ValidationError):
        check(dance_type="\u0085" + "x" * 100)
    with pytest.raises(ValidationError):
        check(dancers=[" " + "y" * 100])
    assert check(dance_type="  salsa  ").dance_type == "salsa"
    with pytest.raises(ValidationError, match="blank"):
        check(dance_type="   ")
