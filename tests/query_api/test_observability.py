"""Request ids, JSON access logs, metrics, memory log line, full-page warning, health."""

from __future__ import annotations

import time
import uuid

import httpx

from tests.query_api.conftest import QueryApi, Writer


def wait_for_log(api: QueryApi, predicate, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in api.log_lines():
            if predicate(line):
                return line
        time.sleep(0.1)
    raise AssertionError("no such log line:\n" + api.process.tail())


def test_request_id_is_echoed_and_in_the_access_log(api: QueryApi, uid: str) -> None:
    request_id = f"req-{uuid.uuid4().hex}"
    response = api.get("/analyses", uid, headers={"X-Request-ID": request_id})
    assert response.headers["x-request-id"] == request_id
    line = wait_for_log(
        api, lambda entry: entry.get("event") == "request" and entry.get("request_id") == request_id
    )
    assert line["path"] == "/analyses"
    assert line["status"] == 200
    assert line["user"] == uid
    assert line["service"] == "query-api"
    assert isinstance(line["duration_ms"], float | int)


def test_request_id_is_generated_when_absent_or_insane(api: QueryApi, uid: str) -> None:
    plain = api.get("/analyses", uid)
    insane = api.get("/analyses", uid, headers={"X-Request-ID": "bad id with spaces"})
    for response in (plain, insane):
        assert len(response.headers["x-request-id"]) == 32
    assert plain.headers["x-request-id"] != insane.headers["x-request-id"]


def test_metrics_and_memory_log(api: QueryApi, uid: str) -> None:
    api.get("/analyses", uid)
    metrics = httpx.get(api.url + "/metrics", timeout=10).text
    assert "process_resident_memory_bytes" in metrics
    assert 'handler="/analyses"' in metrics
    line = wait_for_log(api, lambda entry: entry.get("event") == "memory")
    assert line["rss_mb"] > 0


def test_full_page_at_the_maximum_logs_a_warning(api: QueryApi, write: Writer, uid: str) -> None:
    write(uid, 101)
    response = api.get("/analyses", uid, params={"limit": 100})
    assert len(response.json()) == 100
    line = wait_for_log(
        api,
        lambda entry: entry.get("event") == "list_page_full_at_max" and entry.get("user_id") == uid,
    )
    assert line["level"] == "warning"
    # What Cloud Logging reads from the same line.
    assert (line["severity"], line["message"]) == ("WARNING", "list_page_full_at_max")
    assert line["more"] is True
    metrics = httpx.get(api.url + "/metrics", timeout=10).text
    assert 'query_api_full_pages_total{route="/analyses"}' in metrics


def test_health_and_readiness(api: QueryApi) -> None:
    assert httpx.get(api.url + "/healthz", timeout=10).json() == {"status": "alive"}
    ready = httpx.get(api.url + "/readyz", timeout=10)
    assert ready.status_code == 200
    assert ready.json()["checks"] == {
        "started": "ok",
        "draining": "ok",
        "event_loop": "ok",
        "auth_keys": "ok",
    }
    assert ready.json()["dependencies"] == {"firestore": "ok", "jwks": "ok"}


def test_openapi_declares_models_and_errors(api: QueryApi) -> None:
    spec = httpx.get(api.url + "/openapi.json", timeout=10).json()
    listing = spec["paths"]["/analyses"]["get"]
    assert {"200", "304", "400", "401", "403", "422", "429"} <= set(listing["responses"])
    limit = next(p for p in listing["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 100
    detail = spec["paths"]["/analyses/{analysis_id}"]["get"]
    assert "404" in detail["responses"]
    assert "video_url" not in str(spec["components"]["schemas"])
