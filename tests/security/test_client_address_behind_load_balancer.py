"""Behind Google's external Application Load Balancer every user is their own client. The
load balancer connects from its proxy ranges and appends `<client>, <its own address>` to
X-Forwarded-For; the client is the entry before the load balancer's own, whatever the
client put in front of it. Real HTTP against a running query-api whose trusted proxy is
this test (127.0.0.1), with the position prod uses."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from flokraft_devstack.issuer import TestIssuer
from flokraft_devstack.processes import ManagedProcess
from tests.query_api.conftest import start_query_api

LB = "34.111.22.33"  # the load balancer's forwarding-rule address (public, not a proxy range)
JUNK = ("Authorization", "Bearer junk")


@pytest.fixture
def behind_lb(firestore: ManagedProcess, issuer: TestIssuer) -> Iterator[str]:
    api = start_query_api(
        firestore.host,
        issuer,
        f"xff-{uuid.uuid4().hex[:10]}",
        RATE_LIMIT_PER_IP="3/minute",
        FORWARDED_ALLOW_IPS="127.0.0.1",
        FORWARDED_FOR_CLIENT_POSITION="2",
    )
    try:
        yield api.url
    finally:
        api.stop()


def junk(url: str, *forwarded_for: str) -> int:
    """A bad token, sent with these X-Forwarded-For header lines (as the LB forwards)."""
    headers = [JUNK, *(("X-Forwarded-For", value) for value in forwarded_for)]
    return httpx.get(url + "/analyses", headers=headers, timeout=10).status_code


def test_the_client_is_the_entry_before_the_load_balancers_own(
    behind_lb: str, issuer: TestIssuer
) -> None:
    alice = f"203.0.113.5, {LB}"
    assert [junk(behind_lb, alice) for _ in range(3)] == [401, 401, 401]
    # Alice's address has spent its budget of failures...
    assert junk(behind_lb, alice) == 429
    # ...and prefixes she writes herself change nothing: the LB appends after them.
    assert junk(behind_lb, f"203.0.113.99, 203.0.113.5, {LB}") == 429
    assert junk(behind_lb, f"1.1.1.1, 10.0.0.1, 203.0.113.5, {LB}") == 429
    # Her own header line, then the LB's: still her.
    assert junk(behind_lb, "203.0.113.77", f"203.0.113.5, {LB}") == 429
    # Another user behind the same load balancer has a bucket of their own; the LB's
    # address (last entry) is not what is counted.
    assert junk(behind_lb, f"203.0.113.6, {LB}") == 401
    # A valid token from Alice's address is served (governed per user).
    ok = httpx.get(
        behind_lb + "/analyses",
        headers={**issuer.headers("alice-xff"), "X-Forwarded-For": alice},
        timeout=10,
    )
    assert ok.status_code == 200


def test_shapes_the_load_balancer_never_sends_are_not_believed(behind_lb: str) -> None:
    # One entry only (a client talking to the backend directly would look like this, if
    # it could): the peer is counted, here 127.0.0.1, whose bucket is fresh.
    assert [junk(behind_lb, "203.0.113.8") for _ in range(3)] == [401, 401, 401]
    # Three more failures from the peer with junk where the client belongs: same bucket.
    assert junk(behind_lb, f"not-an-address, {LB}") == 429
    assert junk(behind_lb) == 429


def test_ipv6_clients_are_counted_by_their_64(behind_lb: str) -> None:
    for host in ("1", "2", "3"):
        assert junk(behind_lb, f"2001:db8:1:2::{host}, {LB}") == 401
    # Another address of the same /64: the same bucket.
    assert junk(behind_lb, f"2001:db8:1:2:ffff::9, {LB}") == 429
    assert junk(behind_lb, f"2001:db8:1:3::1, {LB}") == 401


def test_without_trusted_proxies_no_header_is_believed(
    firestore: ManagedProcess, issuer: TestIssuer
) -> None:
    # The default outside the prod profile: trust nobody, whatever the position says.
    api = start_query_api(
        firestore.host,
        issuer,
        f"xff-{uuid.uuid4().hex[:10]}",
        RATE_LIMIT_PER_IP="3/minute",
        FORWARDED_FOR_CLIENT_POSITION="2",
    )
    try:
        statuses = [junk(api.url, f"203.0.113.{n}, {LB}") for n in range(4)]
        assert statuses == [401, 401, 401, 429]
    finally:
        api.stop()
