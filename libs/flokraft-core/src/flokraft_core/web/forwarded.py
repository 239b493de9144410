"""The client's address, as the rate limits and the stream caps key on it.

Only a connection from a trusted proxy (`FORWARDED_ALLOW_IPS`, addresses or CIDRs) has its
`X-Forwarded-For` believed, and then only the entry the proxy wrote itself: the
`FORWARDED_FOR_CLIENT_POSITION`-th from the end. Everything to the left of it came from
the client and may be anything.

Why not uvicorn's `--forwarded-allow-ips`: it takes the last entry that is not a trusted
proxy. Google's external Application Load Balancer connects from its proxy ranges
(35.191.0.0/16, 130.211.0.0/22) and appends `<client>, <its forwarding rule's address>`;
the forwarding rule's address is a public address the chart does not know, so uvicorn
would take it for the client and every user behind the load balancer would share one
bucket. With position 2 the entry before the load balancer's own is taken, whatever the
client put in front of it.

IPv6 clients are keyed by their /64: one host usually holds a whole /64, so a key per
address would give an abuser as many buckets and stream slots as they like.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Longer than any sane list of proxies; a longer header is not parsed at all.
_MAX_FORWARDED_FOR_BYTES: Final = 4096
_IPV6_CLIENT_PREFIX: Final = 64


def parse_networks(spec: str | Iterable[str]) -> tuple[Network, ...]:
    """`10.0.0.0/8, 35.191.0.0/16, 127.0.0.1` -> networks. Raises ValueError on anything
    that is not an address or a network, so a typo fails at startup, not silently."""
    items = spec.split(",") if isinstance(spec, str) else spec
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip())


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_key(address: str) -> str:
    """The key a client is counted under: the address itself for IPv4, its /64 for IPv6
    (an IPv4-mapped IPv6 address counts as the IPv4 address)."""
    parsed = _address(address)
    if parsed is None:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, _IPV6_CLIENT_PREFIX), strict=False))
    return str(parsed)


def resolve_client(
    peer: str | None,
    forwarded_for: list[str],
    trusted: tuple[Network, ...],
    position: int,
) -> str | None:
    """The client's address: `peer` unless it is a trusted proxy whose X-Forwarded-For
    (all header lines, in order) has a well-formed address at `position` from the end.
    Anything else (no header, too few entries, junk) leaves the peer: a proxy that did not
    write what we expect is not believed."""
    if peer is None or not trusted or not forwarded_for:
        return peer
    peer_address = _address(peer)
    if peer_address is None or not any(peer_address in network for network in trusted):
        return peer
    joined = ",".join(forwarded_for)
    if len(joined) > _MAX_FORWARDED_FOR_BYTES:
        return peer
    entries = joined.split(",")
    if len(entries) < position:
        return peer
    client = _address(entries[-position])
    return peer if client is None else str(client)


class ForwardedClientMiddleware:
    """Sets `scope["client"]` to the resolved client (with port 0 when it came from the
    header), before anything else reads it."""

    def __init__(self, app: ASGIApp, *, trusted: tuple[Network, ...], position: int) -> None:
        if position < 1:
            raise ValueError("the X-Forwarded-For position counts from 1 (the last entry)")
        self.app = app
        self.trusted = trusted
        self.position = position

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.trusted:
            client = scope.get("client")
            peer = client[0] if client else None
            forwarded = [
                value.decode("latin-1")
                for name, value in scope.get("headers", [])
                if name == b"x-forwarded-for"
            ]
            resolved = resolve_client(peer, forwarded, self.trusted, self.position)
            if resolved is not None and resolved != peer:
                scope["client"] = (resolved, 0)
        await self.app(scope, receive, send)
