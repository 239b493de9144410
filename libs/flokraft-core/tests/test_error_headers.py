"""Every 503 says when to come back (Retry-After), as its OpenAPI entry declares: here the
one a replica answers before its start-up has built the token verifier."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.testclient import TestClient

from flokraft_core.settings import HttpServiceSettings
from flokraft_core.web.app import create_service_app
from flokraft_core.web.errors import UNAVAILABLE_RETRY_AFTER


def test_a_503_while_starting_carries_retry_after() -> None:
    router = APIRouter()

    @router.post("/things")
    async def make_thing() -> None:
        raise AssertionError("never reached before the start-up")

    settings = HttpServiceSettings(service_name="test-503", log_format="json")
    app = create_service_app(settings, title="t", description="t", version="0", routers=[router])
    # No `with`: the lifespan has not run, so the verifier is not there yet.
    client = TestClient(app, raise_server_exceptions=False)
    response = client.post("/things", json={}, headers={"Authorization": "Bearer x"})
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert response.headers["retry-after"] == str(UNAVAILABLE_RETRY_AFTER)
    operation = app.openapi()["paths"]["/things"]["post"]
    assert operation["operationId"] == "makeThing"
