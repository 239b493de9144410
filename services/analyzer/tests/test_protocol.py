"""The worker-child protocol: what the child writes is what the worker reads."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from analyzer.failures import FailureKind
from analyzer.protocol import (
    ChildRequest,
    FailureMessage,
    MessageReader,
    ProgressMessage,
    ResultMessage,
    encode,
)


def test_messages_round_trip_across_chunk_boundaries() -> None:
    sent = [
        ProgressMessage(value=0.25),
        FailureMessage(kind=FailureKind.DECODE, message="bad file", retryable=False),
        ResultMessage(metrics={"total_score": 80.0}, text="report", peak_rss_bytes=5),
    ]
    wire = "".join(encode(m) for m in sent).encode()
    reader = MessageReader()
    received = reader.feed(wire[:7]) + reader.feed(wire[7:40]) + reader.feed(wire[40:])
    assert received == sent


def test_lines_that_are_no_message_are_skipped() -> None:
    reader = MessageReader()
    received = reader.feed(
        b'not json\n{"type": "other"}\n{"type": "failure", "kind": "timeout", "message": "x"}\n'
        b'{"type": "progress", "value": 0.5}\n{"type": "progress"'
    )
    # A kind only the worker decides (timeout) is no child message; the last line is
    # incomplete (a child killed mid-write) and waits for more bytes.
    assert received == [ProgressMessage(value=0.5)]


def test_the_request_is_typed() -> None:
    request = ChildRequest(
        settings={"engine": "m:f"}, video_url="gs://b/v.mp4", analysis_type="solo"
    )
    assert ChildRequest.model_validate_json(request.model_dump_json()) == request
    with pytest.raises(ValidationError):
        ChildRequest.model_validate_json('{"video_url": "gs://b/v.mp4"}')
