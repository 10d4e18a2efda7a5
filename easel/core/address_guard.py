"""The address guard of calls the server makes to outside URLs (`easel.core.outbound`):
only http(s), only public addresses (unless allowed), and each connection to exactly the
address checked.

Checking a name and then letting the HTTP client resolve it again would let a name that
answers a public address, then 127.0.0.1, reach loopback (DNS rebinding). So `pin`
resolves once, checks, and gives a `Target`: the URL with the checked address in place of
the name, plus the name for the Host header and TLS (SNI and certificate checks). Names
are resolved through a `Resolver`: the system's, or one a test injects.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Protocol

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
RESOLVE_TIMEOUT_S = 5.0

# Ranges `is_global` lets through (in some Python versions) that no public server has.
_NOT_PUBLIC = tuple(
    ipaddress.ip_network(network)
    for network in (
        "100.64.0.0/10",  # carrier-grade NAT
        "192.0.0.0/24",  # IETF protocol assignments
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        "198.18.0.0/15",  # benchmarking
        "::/96",  # IPv4-compatible (deprecated, never routed)
        "64:ff9b:1::/48",  # local-use NAT64: where it leads is the local network's choice
        "2001::/32",  # Teredo: the client address inside is obfuscated and relayed
        "3fff::/20",  # documentation (RFC 9637)
        "fec0::/10",  # site-local (deprecated, still routed as local by some stacks)
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # the well-known prefix: last 32 bits are IPv4


# ---- refusals ---------------------------------------------------------------------------
class UrlRefused(Exception):
    """The URL may not be called: not http(s), no host, or (`non_public`) an address that
    is not public while private ones are not allowed."""

    def __init__(self, message: str, *, non_public: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.non_public = non_public


class HostUnresolved(Exception):
    """The name did not resolve (maybe for a moment: worth another try)."""

    def __init__(self, host: str) -> None:
        super().__init__(f"host {host!r} does not resolve")


# ---- addresses ------------------------------------------------------------------------
class Resolver(Protocol):
    """Turns a host name into the addresses a connection to it may use."""

    async def resolve(self, host: str, port: int) -> list[IPAddress]: ...


class SystemResolver:
    """The operating system's resolver (getaddrinfo), bounded by a timeout."""

    def __init__(self, timeout_s: float = RESOLVE_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.timeout_s):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        # A scoped IPv6 address comes as fe80::1%eth0: the scope is no part of the address.
        return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


SYSTEM_RESOLVER = SystemResolver()


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address a packet to `address` ends at, for the IPv6 forms that carry one in
    a fixed place: IPv4-mapped, 6to4 and NAT64 (well-known prefix)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Globally reachable unicast, judged by the IPv4 address inside when there is one."""
    inner = embedded_ipv4(address)
    if inner is not None:
        return is_public(inner)
    if any(address in network for network in _NOT_PUBLIC):
        return False
    return address.is_global and not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def parse_url(url: str | httpx.URL) -> httpx.URL:
    """The URL as the HTTP client reads it (one parser for checking and for connecting)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise UrlRefused(f"not a valid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise UrlRefused("must be an http:// or https:// URL")
    if not parsed.host:
        raise UrlRefused("has no host")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise UrlRefused(f"not a valid URL: port {parsed.port} is out of range")
    return parsed


async def _addresses(url: httpx.URL, resolver: Resolver) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(url.host)]
    except ValueError:
        pass  # a name: resolve it
    port = url.port or (443 if url.scheme == "https" else 80)
    host = url.raw_host.decode("ascii")  # IDNA-encoded, as resolvers want it
    try:
        addresses = await resolver.resolve(host, port)
    except (OSError, TimeoutError) as exc:
        raise HostUnresolved(host) from exc
    if not addresses:
        raise HostUnresolved(host)
    return addresses


def _require_public(url: httpx.URL, addresses: list[IPAddress]) -> None:
    for address in addresses:
        if not is_public(address):
            raise UrlRefused(
                f"{url.host!r} is a loopback, private or otherwise non-public address ({address})",
                non_public=True,
            )


@dataclass(frozen=True)
class Target:
    """Where one request goes: `url` names the checked address; the name goes in the Host
    header and, for https, in TLS (`extensions` for httpx)."""

    url: httpx.URL
    host_header: str
    extensions: dict[str, str]


async def check_url(url: str, *, allow_private: bool, resolver: Resolver = SYSTEM_RESOLVER) -> None:
    """Raise UrlRefused unless `url` is http(s) with a host that is (and resolves only to)
    public addresses; `allow_private` lifts the address rule. A name that does not
    resolve is refused too (said in the message)."""
    parsed = parse_url(url)
    if allow_private:
        return
    try:
        addresses = await _addresses(parsed, resolver)
    except HostUnresolved as exc:
        raise UrlRefused(str(exc)) from exc
    _require_public(parsed, addresses)


async def pin(
    url: str | httpx.URL, *, allow_private: bool, resolver: Resolver = SYSTEM_RESOLVER
) -> Target:
    """Check `url` as `check_url` does, resolving its name once, and give the target that
    connects to the checked address. Raises HostUnresolved when the name does not resolve
    (worth another try), UrlRefused when the URL is refused."""
    parsed = parse_url(url)
    addresses = await _addresses(parsed, resolver)
    if not allow_private:
        _require_public(parsed, addresses)
    name = parsed.raw_host.decode("ascii")
    pinned = parsed.copy_with(host=str(addresses[0]))
    extensions = {"sni_hostname": name} if parsed.scheme == "https" else {}
    return Target(url=pinned, host_header=parsed.netloc.decode("ascii"), extensions=extensions)
