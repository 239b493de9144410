"""Where the analyzer may connect to fetch a video: public addresses only.

The host of an allowed https:// prefix is resolved once; every address it resolves to must
be public (not loopback, private, link-local - the metadata server -, CGNAT 100.64/10,
multicast, reserved or unspecified, in IPv4 or IPv6, IPv4-mapped and NAT64 forms
included), and the download then connects to exactly the address that was checked, so a
second DNS answer cannot point the connection elsewhere (DNS rebinding). IP literals in
any notation (decimal `2130706433`, hex `0x7f.1`, octal `0177.0.0.1`) go through the same
resolver as names, so they are judged by the address they mean, not by how they look.

The decision is a pure function of the resolver's answer: the tests check it without
sending a packet anywhere.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

# Shared address space (RFC 6598): carrier NAT, and GKE's default for some ranges.
# `is_private` does not include it in every Python version; listed explicitly.
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressRefused(Exception):
    """The host resolves to an address the analyzer must not connect to."""


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _embedded_ipv4(address: IpAddress) -> ipaddress.IPv4Address | None:
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    return None


def is_public(address: IpAddress) -> bool:
    embedded = _embedded_ipv4(address)
    if embedded is not None and not is_public(embedded):
        return False
    return not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT)
        or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
        or not address.is_global
    )


@dataclass(frozen=True)
class CheckedAddress:
    host: str
    ip: IpAddress


def checked_address(
    host: str,
    port: int,
    *,
    allowed_networks: Sequence[IpNetwork] = (),
    resolver: Resolver = system_resolver,
) -> CheckedAddress:
    """Resolves `host` once and returns the address to connect to, or raises
    AddressRefused when any address it resolves to is not public (and not in one of the
    explicitly allowed networks, a test and local-profile escape hatch)."""
    try:
        answers = resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise AddressRefused("the video's host name does not resolve") from exc
    addresses = []
    for answer in answers:
        try:
            # Strip an IPv6 zone (`fe80::1%eth0`): the zone makes it no more public.
            addresses.append(ipaddress.ip_address(answer.split("%", 1)[0]))
        except ValueError as exc:
            raise AddressRefused("the video's host resolves to no usable address") from exc
    if not addresses:
        raise AddressRefused("the video's host resolves to no address")
    for address in addresses:
        if is_public(address) or any(address in network for network in allowed_networks):
            continue
        # Refuse if any answer is internal: picking a "good" one would let an attacker's
        # DNS mix answers until the internal one is tried.
        raise AddressRefused("the video's host is not a public internet address")
    return CheckedAddress(host=host, ip=addresses[0])


def parse_networks(values: Sequence[str]) -> list[IpNetwork]:
    return [ipaddress.ip_network(value, strict=False) for value in values]
