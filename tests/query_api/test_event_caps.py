"""Issue 21, point 3: event streams capped per user and per client address (429 with
Retry-After, so the frontend keeps polling), and a stream ends at its token's expiry with
a `reconnect` event the client understands. Real streams over HTTP against a running
query-api that trusts this test as its proxy, so each stream can come from an address."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.processes import ManagedProcess
from tests.query_api.conftest import (
    QueryApi,
    assert_served,
    ends_with_reconnect,
    running_query_api,
)
from tests.support.sse import EventStream

EVENTS = "/analyses/events"


@pytest.fixture(scope="module")
def capped_api(firestore: ManagedProcess, issuer: TestIssuer) -> Iterator[QueryApi]:
    with running_query_api(
        firestore.host,
        issuer,
        FORWARDED_ALLOW_IPS="127.0.0.1",
        EVENTS_MAX_STREAMS="50",
        EVENTS_MAX_STREAMS_PER_USER="2",
        EVENTS_MAX_STREAMS_PER_ADDRESS="3",
        EVENTS_FULL_RETRY_AFTER_SECONDS="11",
    ) as it:
        yield it


def stream(api: QueryApi, token: str, address: str) -> EventStream:
    headers = {"Authorization": f"Bearer {token}", "X-Forwarded-For": address}
    return EventStream(api.url + EVENTS, headers).open()


def test_one_account_cannot_take_more_than_a_few_tabs(capped_api: QueryApi, uid: str) -> None:
    issuer = capped_api.issuer
    tabs = [stream(capped_api, issuer.token(uid), f"198.51.100.{n}") for n in (1, 2)]
    try:
        for tab in tabs:
            assert tab.next().event == "ready"
        third = stream(capped_api, issuer.token(uid), "198.51.100.3")
        assert third.status == 429
        assert third.response_headers["retry-after"] == "11"
        assert b"too_many_streams" in third.body
        # Another user is not affected; a closed tab frees its place.
        assert_served(lambda: stream(capped_api, issuer.token(f"{uid}-b"), "198.51.100.4"))
        tabs[0].close()
        assert_served(lambda: stream(capped_api, issuer.token(uid), "198.51.100.5"), within=10)
    finally:
        for tab in tabs:
            tab.close()


def test_one_address_cannot_take_the_replica_with_many_accounts(
    capped_api: QueryApi, uid: str
) -> None:
    issuer = capped_api.issuer
    address = "203.0.113.44"
    held = [stream(capped_api, issuer.token(f"{uid}-{n}"), address) for n in range(3)]
    try:
        assert all(s.status == 200 for s in held)
        fourth = stream(capped_api, issuer.token(f"{uid}-3"), address)
        assert fourth.status == 429
        assert fourth.response_headers["retry-after"] == "11"
        # The same account from elsewhere is served.
        assert_served(lambda: stream(capped_api, issuer.token(f"{uid}-3"), "203.0.113.45"))
    finally:
        for s in held:
            s.close()


def test_a_stream_ends_at_its_tokens_expiry_with_a_reconnect_event(
    capped_api: QueryApi, uid: str
) -> None:
    token = capped_api.issuer.token(uid, ttl_seconds=3)
    started = time.monotonic()
    tab = stream(capped_api, token, "198.51.100.77")
    try:
        assert tab.next().event == "ready"
        ended = ends_with_reconnect(tab, "token_expired")
        # At the expiry (3 s), not at the stream's lifetime (300 s).
        assert ended - started < 6
    finally:
        tab.close()
