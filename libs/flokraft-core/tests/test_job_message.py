from __future__ import annotations

import pytest

from flokraft_core.messaging.job_message import (
    ATTR_SCHEMA_VERSION,
    InvalidJobMessage,
    decode_job,
    job_attributes,
    new_job,
)


def test_round_trip() -> None:
    job = new_job("abc123", 3, "alice")
    attrs = job_attributes("trace-1")
    assert attrs["trace_id"] == "trace-1"
    assert decode_job(job.encode(), attrs) == job
    assert job.ordering_key() == "abc123"


def test_invalid_body_keeps_the_analysis_id_when_readable() -> None:
    with pytest.raises(InvalidJobMessage) as info:
        decode_job(b'{"analysis_id": "abc", "generation": 0}', job_attributes())
    assert info.value.analysis_id == "abc"


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"analysis_id": "../x"}'])
def test_garbage_has_no_analysis_id(body: bytes) -> None:
    with pytest.raises(InvalidJobMessage) as info:
        decode_job(body, job_attributes())
    assert info.value.analysis_id is None


def test_unknown_schema_version_is_refused() -> None:
    job = new_job("abc", 1, "alice")
    with pytest.raises(InvalidJobMessage, match="schema_version"):
        decode_job(job.encode(), {ATTR_SCHEMA_VERSION: "99"})


def test_extra_fields_are_refused() -> None:
    with pytest.raises(InvalidJobMessage):
        decode_job(
            b'{"analysis_id":"a","generation":1,"requested_by":"u",'
            b'"requested_at":"2024-01-01T00:00:00Z","x":1}',
            job_attributes(),
        )
