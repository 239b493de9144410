"""CORS_ALLOW_ORIGINS and CORS_ALLOW_ORIGIN_REGEX: read from the environment as the chart
sets them, and refused at start-up when a browser could never match them (or when they
would let any site in)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flokraft_core.settings import HttpServiceSettings


def test_origins_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ALLOW_ORIGINS", " https://app.example.com, http://localhost:5173 ,")
    monkeypatch.setenv("CORS_ALLOW_ORIGIN_REGEX", r"https://pr-[0-9]+\.example\.dev")
    settings = HttpServiceSettings()
    assert settings.cors_allow_origins == ("https://app.example.com", "http://localhost:5173")
    assert settings.cors_allow_origin_regex == r"https://pr-[0-9]+\.example\.dev"


def test_nothing_is_allowed_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CORS_ALLOW_ORIGINS", raising=False)
    monkeypatch.delenv("CORS_ALLOW_ORIGIN_REGEX", raising=False)
    settings = HttpServiceSettings()
    assert settings.cors_allow_origins == ()
    assert settings.cors_allow_origin_regex is None


@pytest.mark.parametrize(
    ("origin", "reason"),
    [
        ("*", "'*' is not allowed"),
        ("https://app.example.com/", "no path"),
        ("https://app.example.com/app", "no path"),
        ("app.example.com", "an origin is http"),
        ("ftp://app.example.com", "an origin is http"),
        ("https://App.Example.com", "lower case"),
        ("http://localhost:99999", "port"),
        ("https://user@app.example.com", "user part"),
    ],
)
def test_an_origin_no_browser_sends_is_refused(origin: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        HttpServiceSettings(cors_allow_origins=origin)  # type: ignore[arg-type]


@pytest.mark.parametrize("pattern", [".*", "https?://.*", "(", "https://.+"])
def test_a_pattern_that_admits_anyone_or_does_not_compile_is_refused(pattern: str) -> None:
    with pytest.raises(ValidationError, match="cors_allow_origin_regex"):
        HttpServiceSettings(cors_allow_origin_regex=pattern)
