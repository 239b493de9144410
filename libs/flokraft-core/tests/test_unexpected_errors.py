"""A 500 is a JSON error with CORS headers like every other answer (issue 21): Starlette
answers an unhandled exception from its outermost middleware, outside CORS, so the browser
saw an opaque network error. The real app factory with a route that fails, in-process."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.testclient import TestClient

from flokraft_core.settings import HttpServiceSettings
from flokraft_core.web.app import create_service_app

ORIGIN = "https://app.flokraft.example"


def failing_app() -> TestClient:
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    settings = HttpServiceSettings(
        service_name="test-500", cors_allow_origins=(ORIGIN,), log_format="json"
    )
    app = create_service_app(settings, title="t", description="t", version="0", routers=[router])
    return TestClient(app, raise_server_exceptions=False)


def test_a_500_carries_cors_headers_and_the_json_error() -> None:
    with failing_app() as client:
        response = client.get("/boom", headers={"Origin": ORIGIN, "X-Request-ID": "req-500"})
    assert response.status_code == 500
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert "X-Request-ID" in response.headers["access-control-expose-headers"]
    assert response.headers["x-request-id"] == "req-500"
    assert response.json() == {
        "error": {"code": "internal", "message": "internal error", "request_id": "req-500"}
    }


def test_a_500_for_another_origin_carries_none() -> None:
    with failing_app() as client:
        response = client.get("/boom", headers={"Origin": "https://elsewhere.example"})
    assert response.status_code == 500
    assert "access-control-allow-origin" not in response.headers
