"""Who the client is, by address: the one place the gateway decides it.

`X-Forwarded-For` is only a claim: anyone can send one. It is believed only when the
direct peer is one of `EASEL_TRUSTED_PROXIES`, and then only as far back as the chain of
trusted proxies goes: walking from the right (each proxy appends the peer it saw), the
first address that is not itself a trusted proxy is the client. Whatever lies left of it
was written by the client, or by an untrusted hop, and is dropped.

The server in front (uvicorn) must not rewrite the peer from these headers itself, or
the peer seen here would already be the claim: `easel serve` runs it without proxy headers.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from starlette.types import Scope

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

UNKNOWN = "unknown"  # a scope without a peer (some test transports)


@lru_cache(maxsize=4096)  # a peer sends many requests: parse its address once
def _parse(text: str) -> IPAddress | None:
    """An address as proxies write it: bare, `[v6]:port` or `v4:port`; None if not one."""
    text = text.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # "::ffff:192.0.2.1" is 192.0.2.1
    return address


class TrustedProxies:
    """The proxies whose `X-Forwarded-For` the gateway believes (none by default)."""

    def __init__(self, networks: Iterable[IPNetwork] = ()) -> None:
        self.networks = tuple(networks)

    def trusts(self, address: IPAddress | None) -> bool:
        return address is not None and any(address in network for network in self.networks)

    def chain(self, scope: Scope) -> list[str]:
        """The forwarding chain the gateway believes, the client first and its direct peer
        last: what it passes on as `X-Forwarded-For`."""
        peer_text = scope["client"][0] if scope.get("client") else UNKNOWN
        peer = _parse(peer_text)
        believed = [str(peer) if peer is not None else peer_text]
        if not self.trusts(peer):
            return believed
        for hop in reversed(_forwarded_for(scope)):
            address = _parse(hop)
            if address is None:
                # Not an address: no trusted proxy wrote it, so trust ends at the last hop.
                break
            believed.insert(0, str(address))
            if not self.trusts(address):
                break
        return believed

    def client(self, scope: Scope) -> str:
        """The client's address (or the peer's name where it is not an address)."""
        return self.chain(scope)[0]


def _forwarded_for(scope: Scope) -> list[str]:
    """Every `X-Forwarded-For` entry, in order, across repeated headers."""
    entries: list[str] = []
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-for":
            entries.extend(e for e in value.decode("latin-1").split(",") if e.strip())
    return entries
