"""The client-address resolver (web/forwarded.py) on the shapes X-Forwarded-For takes."""

from __future__ import annotations

import pytest

from flokraft_core.settings import HttpServiceSettings
from flokraft_core.web.forwarded import client_key, parse_networks, resolve_client

GOOGLE = parse_networks("35.191.0.0/16, 130.211.0.0/22")
LB = "34.111.22.33"


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        # What the load balancer sends: <client>, <its own address>.
        ("35.191.4.5", [f"203.0.113.5, {LB}"], "203.0.113.5"),
        ("130.211.1.9", [f"203.0.113.5,{LB}"], "203.0.113.5"),
        # Whatever the client wrote comes before; never taken.
        ("35.191.4.5", [f"6.6.6.6, 203.0.113.5, {LB}"], "203.0.113.5"),
        ("35.191.4.5", ["6.6.6.6", f"203.0.113.5, {LB}"], "203.0.113.5"),
        ("35.191.4.5", [f"2001:db8::1, {LB}"], "2001:db8::1"),
        ("35.191.4.5", [f"[2001:db8::1]:443, {LB}"], "2001:db8::1"),
        # Not from the load balancer's ranges: the header is the client's, ignored.
        ("198.51.100.1", [f"203.0.113.5, {LB}"], "198.51.100.1"),
        ("130.211.4.1", [f"203.0.113.5, {LB}"], "130.211.4.1"),  # outside the /22
        # From the load balancer but not its shape: the peer.
        ("35.191.4.5", [LB], "35.191.4.5"),
        ("35.191.4.5", [], "35.191.4.5"),
        ("35.191.4.5", [f"junk, {LB}"], "35.191.4.5"),
        ("35.191.4.5", [f"{'1.2.3.4, ' * 2000}203.0.113.5, {LB}"], "35.191.4.5"),
        (None, [f"203.0.113.5, {LB}"], None),
    ],
)
def test_the_entry_before_the_load_balancer(
    peer: str | None, headers: list[str], expected: str | None
) -> None:
    assert resolve_client(peer, headers, GOOGLE, 2) == expected


def test_position_one_takes_the_last_entry() -> None:
    nets = parse_networks("10.0.0.0/8")
    assert resolve_client("10.1.2.3", ["6.6.6.6, 203.0.113.5"], nets, 1) == "203.0.113.5"


def test_trusting_nobody_believes_nothing() -> None:
    assert resolve_client("35.191.4.5", [f"203.0.113.5, {LB}"], (), 2) == "35.191.4.5"


def test_client_keys() -> None:
    assert client_key("203.0.113.5") == "203.0.113.5"
    assert (
        client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    )
    assert client_key("::ffff:203.0.113.5") == "203.0.113.5"
    assert client_key("unknown") == "unknown"


def test_a_typo_in_the_proxies_fails_at_startup() -> None:
    with pytest.raises(ValueError, match="not an address or network"):
        HttpServiceSettings(forwarded_allow_ips="35.191.0.0/16, 130.211.0.0/222")
    assert HttpServiceSettings(forwarded_allow_ips="35.191.0.0/16,130.211.0.0/22")
