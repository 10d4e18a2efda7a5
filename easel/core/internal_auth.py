"""The credential services require of each other: `X-Easel-Internal`, derived from
`EASEL_INTERNAL_TOKEN` and never the token itself.

`v1.<unix seconds>.<HMAC-SHA256(token, "v1.<seconds>.<caller header>")>`: time-limited (a
captured header is worthless after `max_age`), and bound to the caller header it came with,
so a valid credential cannot carry a forged identity.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from easel.core.identity import CALLER_HEADER, Caller

INTERNAL_HEADER = "x-easel-internal"
_VERSION = "v1"


def _signature(token: str, stamp: str, caller_header: str) -> str:
    message = f"{_VERSION}.{stamp}.{caller_header}".encode()
    return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()


def internal_credential(token: str, caller_header: str = "", *, now: float | None = None) -> str:
    stamp = str(int(time.time() if now is None else now))
    return f"{_VERSION}.{stamp}.{_signature(token, stamp, caller_header)}"


def credential_is_valid(
    token: str,
    credential: str | None,
    caller_header: str = "",
    *,
    max_age: float,
    now: float | None = None,
) -> bool:
    """Whether `credential` was made from `token` for `caller_header`, within `max_age`
    seconds either side of `now` (clocks of two machines differ)."""
    if not credential:
        return False
    version, _, rest = credential.partition(".")
    stamp, _, signature = rest.partition(".")
    if version != _VERSION or not stamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > max_age:
        return False
    return hmac.compare_digest(signature, _signature(token, stamp, caller_header))


def outbound_headers(token: str | None, caller: Caller | None = None) -> dict[str, str]:
    """What a call to another service carries: the caller, and the credential when a
    token is configured."""
    caller_header = caller.to_header() if caller is not None else ""
    headers = {CALLER_HEADER: caller_header} if caller_header else {}
    if token:
        headers[INTERNAL_HEADER] = internal_credential(token, caller_header)
    return headers
