from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from google.api_core.datetime_helpers import DatetimeWithNanoseconds
from hypothesis import given
from hypothesis import strategies as st

from flokraft_core.page_tokens import (
    InvalidPageToken,
    PageCursor,
    decode_page_token,
    encode_page_token,
)

doc_ids = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="/", exclude_categories=["Cs"]),
    min_size=1,
    max_size=64,
)
timestamps = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


@given(timestamps, doc_ids)
def test_round_trip_keeps_position(ts: datetime, doc_id: str) -> None:
    cursor = decode_page_token(encode_page_token(PageCursor(ts, doc_id)))
    assert cursor.doc_id == doc_id
    assert cursor.timestamp == ts


def test_nanoseconds_survive_the_round_trip() -> None:
    ts = DatetimeWithNanoseconds(2024, 5, 1, 12, 0, 0, nanosecond=123456789, tzinfo=UTC)
    cursor = decode_page_token(encode_page_token(PageCursor(ts, "abc")))
    assert isinstance(cursor.timestamp, DatetimeWithNanoseconds)
    assert cursor.timestamp.nanosecond == 123456789


@given(st.integers(min_value=1, max_value=40))
def test_truncated_tokens_are_refused(cut: int) -> None:
    token = encode_page_token(PageCursor(datetime(2024, 1, 1, tzinfo=UTC), "doc-1"))
    with pytest.raises(InvalidPageToken):
        decode_page_token(token[:-cut])


def test_forged_token_with_valid_shape_is_refused() -> None:
    payload = b'{"id":"other","ts":"2024-01-01T00:00:00.000000Z","v":1}.000000000000'
    forged = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    with pytest.raises(InvalidPageToken, match="not one this API issued"):
        decode_page_token(forged)


@pytest.mark.parametrize("token", ["", "!!!", "a" * 5000, "bm90LWpzb24", "e30"])
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(InvalidPageToken):
        decode_page_token(token)
