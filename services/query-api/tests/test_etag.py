from __future__ import annotations

import pytest

from query_api.etag import none_match, strong_etag


def test_strong_etag_is_quoted_and_depends_on_every_byte() -> None:
    tag = strong_etag(b'[{"id":"a"}]')
    assert tag[0] == tag[-1] == '"'
    assert not tag.startswith("W/")
    assert tag == strong_etag(b'[{"id":"a"}]')
    assert tag != strong_etag(b'[{"id":"b"}]')


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, False),
        ("", False),
        ('"abc"', True),
        ('W/"abc"', True),
        ('"x", "abc"', True),
        ('"x","abc"', True),
        ("*", True),
        ('"abcd"', False),
        ("abc", False),
        ('"x", "y"', False),
    ],
)
def test_none_match(header: str | None, expected: bool) -> None:
    assert none_match(header, '"abc"') is expected
