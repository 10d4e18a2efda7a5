"""Whether a bind address is reachable from other machines, and the start-up rule that
follows: a server that checks no credential serves only on loopback, unless told
otherwise (`EASEL_ALLOW_UNAUTHENTICATED`), and then says so.

The gateway applies it to API keys, each service to the internal token.
"""

from __future__ import annotations

import ipaddress

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """True only for an address this machine alone can reach: `127.0.0.0/8`, `::1` or
    the name `localhost`. Any other name counts as reachable (it may resolve anywhere),
    as do `0.0.0.0` and `::` (every interface)."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class UnsafeBinding(Exception):
    """A server would listen beyond loopback without checking who calls it."""


def check_binding(
    host: str, *, protected: bool, allowed: bool, missing: str, who: str = "easel"
) -> str | None:
    """None when `host` is loopback or the server is `protected`; a warning to log when it
    is neither but `allowed` (EASEL_ALLOW_UNAUTHENTICATED); otherwise UnsafeBinding.
    `missing` names what would protect it (e.g. "API keys"), `who` the server."""
    if protected or is_loopback(host):
        return None
    if allowed:
        return (
            f"{who} serves on {host} without {missing}: anyone who can reach this address "
            "can use it (EASEL_ALLOW_UNAUTHENTICATED=true)"
        )
    raise UnsafeBinding(
        f"{who} would serve on {host}, reachable from other machines, without {missing}; "
        "configure it, bind to 127.0.0.1, or set EASEL_ALLOW_UNAUTHENTICATED=true"
    )
