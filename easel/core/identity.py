"""Who is calling: the caller the gateway authenticated, as every service sees it.

The gateway turns an API key into a `Caller` and sends it to the service it forwards to in
`X-Easel-Caller`, beside the internal credential (`easel.core.internal_auth`); a service
trusts that header only under a valid credential (or where it needs none: in-process, or
on loopback with no `EASEL_INTERNAL_TOKEN`). Below the edge, code reads `current_caller()`.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum

CALLER_HEADER = "x-easel-caller"
ANONYMOUS = "anonymous"  # the owner of everything done without API keys


class ApiScope(StrEnum):
    """What a key may do. `admin` adds what spans owners (every job) and operations."""

    GENERATE = "generate"
    SEGMENT = "segment"
    UTILS = "utils"
    JOBS = "jobs"
    ADMIN = "admin"


ALL_SCOPES = frozenset(ApiScope)
# What a key from EASEL_API_KEYS may do: everything but admin.
USER_SCOPES = ALL_SCOPES - {ApiScope.ADMIN}


@dataclass(frozen=True)
class Caller:
    """An authenticated key (by name, never the key itself), or `ANONYMOUS`."""

    name: str
    scopes: frozenset[ApiScope] = field(default=ALL_SCOPES)
    # Jobs (queued or running) this caller may have at once; None: no limit of its own.
    max_concurrent_jobs: int | None = None
    # Requests per minute in each route class, the key's own instead of the configured
    # default; gateway-only (not sent to services).
    requests_per_minute: int | None = None

    def can(self, scope: ApiScope) -> bool:
        return scope in self.scopes

    @property
    def is_admin(self) -> bool:
        return ApiScope.ADMIN in self.scopes

    def to_header(self) -> str:
        payload: dict[str, object] = {"name": self.name, "scopes": sorted(self.scopes)}
        if self.max_concurrent_jobs is not None:
            payload["max_concurrent_jobs"] = self.max_concurrent_jobs
        return json.dumps(payload, separators=(",", ":"))

    @classmethod
    def from_header(cls, value: str) -> Caller:
        """ValueError when `value` is not a caller this code wrote."""
        try:
            payload = json.loads(value)
            name = payload["name"]
            scopes = frozenset(ApiScope(s) for s in payload["scopes"])
            limit = payload.get("max_concurrent_jobs")
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"not a caller header: {exc}") from None
        if not isinstance(name, str) or not name or not (limit is None or isinstance(limit, int)):
            raise ValueError("not a caller header")
        return cls(name=name, scopes=scopes, max_concurrent_jobs=limit)


# Where no gateway vouches for anyone (a service called directly where it needs no
# credential, a test, the in-process worker): the operator, with every scope.
LOCAL_CALLER = Caller(name=ANONYMOUS, scopes=ALL_SCOPES)

_caller: ContextVar[Caller] = ContextVar("easel_caller", default=LOCAL_CALLER)
caller_var = _caller


def current_caller() -> Caller:
    return _caller.get()
