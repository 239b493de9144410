"""Resource-name rules, checked without a server."""

from __future__ import annotations

import pytest

from pubsub_emulator import names
from pubsub_emulator.errors import GrpcStatusError


@pytest.mark.parametrize(
    "name",
    [
        "projects/p/topics/abc",
        "projects/my-project-1/topics/A.b_c~d+e%f-g",
        "projects/example.com:legacy/topics/" + "x" * 255,
    ],
)
def test_valid_topic_names(name: str) -> None:
    assert names.validate_topic(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "topics/abc",
        "projects/p/topics/ab",  # too short
        "projects/p/topics/1abc",  # must start with a letter
        "projects/p/topics/goog-reserved",
        "projects/p/topics/has space",
        "projects/p/topics/a/b",
        "projects/p/subscriptions/abc",
        "projects//topics/abc",
        "projects/p/topics/" + "x" * 256,
    ],
)
def test_invalid_topic_names(name: str) -> None:
    with pytest.raises(GrpcStatusError):
        names.validate_topic(name)


def test_subscription_names() -> None:
    assert names.validate_subscription("projects/p/subscriptions/sub")
    with pytest.raises(GrpcStatusError):
        names.validate_subscription("projects/p/topics/sub")
