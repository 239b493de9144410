"""What client generators read from both OpenAPI documents: the chosen operationIds (one
lowerCamelCase style, from the route functions' names), and the headers every answer
that sends them declares (Retry-After on 429 and 503, Location on 201/202, the cache
headers on reads)."""

from __future__ import annotations

import re
from typing import Any

import pytest

OPERATIONS = {
    "query-api": {
        ("get", "/analyses"): "listAnalyses",
        ("get", "/analyses/{analysis_id}"): "getAnalysis",
        ("get", "/admin/analyses"): "listAllAnalyses",
        ("get", "/analyses/events"): "streamAnalysisEvents",
    },
    "rerun-api": {
        ("post", "/analyses"): "createAnalysis",
        ("post", "/analyses/{analysis_id}/rerun"): "rerunAnalysis",
        ("post", "/analyses/{analysis_id}/cancel"): "cancelAnalysis",
        ("post", "/analyses/{analysis_id}/fail"): "failAnalysis",
        ("delete", "/analyses/{analysis_id}"): "deleteAnalysis",
    },
}


def _document(name: str) -> dict[str, Any]:
    if name == "query-api":
        from query_api.main import create_app as query_app
        from query_api.settings import QueryApiSettings

        return query_app(QueryApiSettings(events_enabled=True)).openapi()
    from rerun_api.main import create_app as rerun_app
    from rerun_api.settings import RerunApiSettings

    return rerun_app(RerunApiSettings()).openapi()


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


@pytest.mark.parametrize("name", OPERATIONS)
def test_operation_ids_are_the_chosen_names(name: str) -> None:
    operations = _operations(_document(name))
    ids = {key: operation["operationId"] for key, operation in operations.items()}
    assert ids == OPERATIONS[name]
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)*", op_id) for op_id in ids.values())


@pytest.mark.parametrize("name", OPERATIONS)
def test_every_answer_declares_the_headers_it_sends(name: str) -> None:
    for key, operation in _operations(_document(name)).items():
        responses = operation["responses"]
        for status in ("429", "503"):
            assert responses[status]["headers"]["Retry-After"]["required"] is True, key
        assert "WWW-Authenticate" in responses["401"]["headers"], key
        for status in ("201", "202"):
            if status in responses:
                assert responses[status]["headers"]["Location"]["required"] is True, key
        if key[0] == "get" and key[1] != "/analyses/events":
            for status in ("200", "304"):
                assert {"ETag", "Cache-Control", "Vary"} <= set(responses[status]["headers"])


def test_the_event_stream_describes_its_events() -> None:
    stream = _operations(_document("query-api"))[("get", "/analyses/events")]
    schema = stream["responses"]["200"]["content"]["text/event-stream"]["schema"]
    events = {
        kind
        for variant in schema["oneOf"]
        for kind in variant["properties"]["event"].get(
            "enum", [variant["properties"]["event"].get("const")]
        )
    }
    assert events == {"ready", "changed", "reconnect"}


def test_the_page_token_says_what_it_is() -> None:
    listing = _operations(_document("query-api"))[("get", "/analyses")]
    token = next(p for p in listing["parameters"] if p["name"] == "page_token")
    assert "pattern" in str(token["schema"])
    assert "400" in token["description"]
    link = listing["responses"]["200"]["links"]["next"]
    assert link["parameters"]["page_token"] == "$response.header.X-Next-Page-Token"


@pytest.mark.parametrize("name", OPERATIONS)
def test_optional_headers_are_strings_never_null(name: str) -> None:
    # A header is absent or a string: a null branch makes clients and fuzzers send `null`.
    for key, operation in _operations(_document(name)).items():
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "header":
                assert parameter["schema"]["type"] == "string", (key, parameter)
                assert "anyOf" not in parameter["schema"], (key, parameter)
