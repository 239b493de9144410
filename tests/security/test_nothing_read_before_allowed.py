"""Nothing is read before it is allowed, and every malformed credential is a 401, through
real HTTP against both running APIs."""

from __future__ import annotations

import json
import time

import httpx
import jwt
import psutil
import pytest

from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.processes import ManagedProcess
from tests.security.conftest import forged_token, raw_request

BODY = {
    "video_url": "gs://flokraft-videos/u1/clip.mp4",
    "dance_type": "salsa",
    "dancers": ["a"],
    "analysis_type": "solo",
}


def rss(process: ManagedProcess) -> int:
    assert process.process is not None
    return int(psutil.Process(process.process.pid).memory_info().rss)


def kid_of(issuer: TestIssuer) -> str:
    return str(jwt.get_unverified_header(issuer.token("u1"))["kid"])


def malformed_tokens(issuer: TestIssuer) -> dict[str, str]:
    kid = kid_of(issuer)
    claims = {"sub": "u1", "aud": issuer.audience, "iss": issuer.issuer}
    return {
        # A correctly signed token whose header demands an extension we do not know.
        "crit": jwt.encode(
            {**claims, "iat": int(time.time()), "exp": int(time.time()) + 300},
            issuer.key,
            algorithm="RS256",
            headers={"kid": kid, "crit": ["x-unknown"], "x-unknown": 1},
        ),
        "numeric kid": forged_token({"alg": "RS256", "kid": 5}),
        "list kid": forged_token({"alg": "RS256", "kid": ["a"]}),
        "no kid": forged_token({"alg": "RS256"}),
        "alg none": forged_token({"alg": "none", "kid": kid}),
        "hs256 with our kid": forged_token({"alg": "HS256", "kid": kid}),
        "header not an object": f"{forged_token({})[:0]}WzFd.e30.e30",
        "payload not an object": forged_token({"alg": "RS256", "kid": kid}).split(".")[0]
        + ".WzFd.e30",
    }


@pytest.mark.parametrize("service", ["query_api", "rerun_api"])
def test_every_malformed_token_is_a_401_with_a_reason(
    service: str, request: pytest.FixtureRequest, issuer: TestIssuer
) -> None:
    process: ManagedProcess = request.getfixturevalue(service)
    for name, token in malformed_tokens(issuer).items():
        headers = {"Authorization": f"Bearer {token}"}
        if service == "query_api":
            response = httpx.get(process.url + "/analyses", headers=headers, timeout=10)
        else:
            response = httpx.post(process.url + "/analyses", json=BODY, headers=headers, timeout=10)
        assert response.status_code == 401, (name, response.status_code, response.text)
        error = response.json()["error"]
        assert error["code"] == "unauthenticated"
        assert error["message"], name


def test_an_oversized_token_is_refused_before_decoding(
    query_api: ManagedProcess, rerun_api: ManagedProcess
) -> None:
    # Within the header limit, over the token limit: 401 naming the size, nothing decoded.
    token = "a" * 9000
    for response in (
        httpx.get(query_api.url + "/analyses", headers={"Authorization": f"Bearer {token}"}),
        httpx.post(
            rerun_api.url + "/analyses", json=BODY, headers={"Authorization": f"Bearer {token}"}
        ),
    ):
        assert response.status_code == 401
        assert "longer than 8192 bytes" in response.json()["error"]["message"]


def test_a_megabytes_header_is_refused_while_it_is_read(query_api: ManagedProcess) -> None:
    before = rss(query_api)
    started = time.monotonic()
    for _ in range(3):
        answer = raw_request(
            query_api.port,
            b"GET /analyses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + b"a" * (8 << 20),
        )
        # h11 stops at MAX_HEADER_BYTES: the rest of the 8 MiB is never buffered.
        assert answer.status in (0, 400, 431), answer.head
    assert time.monotonic() - started < 10
    assert rss(query_api) - before < 16 << 20
    assert httpx.get(query_api.url + "/healthz").status_code == 200


def test_an_unauthenticated_body_is_never_read(rerun_api: ManagedProcess) -> None:
    before = rss(rerun_api)
    started = time.monotonic()
    # 150 MB announced, 1 MB actually sent: the 401 must come without waiting for the rest.
    answer = raw_request(
        rerun_api.port,
        b"POST /analyses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 157286400\r\n\r\n",
        b"[" * (1 << 20),
    )
    assert answer.status == 413, answer.head
    assert json.loads(answer.body)["error"]["code"] == "payload_too_large"
    # Within the body limit but without a token: 401 before the body is read at all.
    small = raw_request(
        rerun_api.port,
        b"POST /analyses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 4000\r\n\r\n",
        b"[" * 100,
    )
    assert small.status == 401, small.head
    assert json.loads(small.body)["error"]["code"] == "unauthenticated"
    assert time.monotonic() - started < 5
    assert rss(rerun_api) - before < 16 << 20


def test_a_deeply_nested_body_without_a_token_is_a_401(rerun_api: ManagedProcess) -> None:
    body = b"[" * 4000 + b"]" * 4000
    response = httpx.post(
        rerun_api.url + "/analyses", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401


def test_bodies_over_the_limit_are_413_from_the_header_or_while_streaming(
    rerun_api: ManagedProcess, issuer: TestIssuer
) -> None:
    auth = issuer.headers("body-user")
    padded = {**BODY, "padding": "x" * 9000}
    declared = httpx.post(rerun_api.url + "/analyses", json=padded, headers=auth)
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "payload_too_large"

    def chunks():  # no Content-Length: chunked transfer, counted as it arrives
        yield json.dumps(padded).encode()

    streamed = httpx.post(
        rerun_api.url + "/analyses",
        content=chunks(),
        headers={**auth, "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413
    assert streamed.json()["error"]["code"] == "payload_too_large"
