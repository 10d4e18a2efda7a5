"""Browser safety at the edge: no cross-site request may change anything.

A browser sends a cross-site form POST, a `no-cors` fetch or a multipart upload without
any preflight, so CORS alone does not stop another web page from submitting, cancelling
or uploading through a server on this machine. A state-changing request that names an
`Origin` (or says `Sec-Fetch-Site: cross-site`) is let through only when that origin is
this server's own or in the CORS allow-list; requests without either header (curl, the
SDK, other servers) are unaffected. With `*` among the allowed origins, CORS lets every
page read the answers, and this guard lets every page change things too: the operator's
explicit choice (without credentials, which the settings refuse with `*`). Each refusal is
one audit line. Optionally the `Host` header must be one of `EASEL_ALLOWED_HOSTS`, so that
a rebound DNS name cannot reach a local server at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from easel.core.audit import audit
from easel.core.errors import BadRequest, EaselError, Forbidden, error_body
from easel.core.middleware import send_json_error

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _netloc(origin: str) -> str | None:
    """`host[:port]` of an origin, lower-cased; None for `null` or anything not a URL."""
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return parts.netloc.lower()


def _hostname(host: str) -> str:
    """The name in a Host header, without its port: `[::1]:8000` is `[::1]`."""
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.rpartition(":")[0] if host.count(":") == 1 else host


class BrowserGuardMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        allowed_origins: Iterable[str],
        allowed_hosts: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.allowed_origins = frozenset(o.rstrip("/").lower() for o in allowed_origins)
        self.any_origin = "*" in self.allowed_origins
        self.allowed_hosts = frozenset(h.lower() for h in allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                self._check(scope)
            except EaselError as exc:
                headers = Headers(scope=scope)
                audit(
                    "origin" if isinstance(exc, Forbidden) else "host",
                    key=None,  # before any key is looked at
                    outcome="refused",
                    method=scope["method"],
                    path=scope["path"],
                    origin=headers.get("origin", "-"),
                    host=headers.get("host", "-"),
                )
                body = error_body(exc.code, exc.message, exc.details)
                await send_json_error(send, exc.status, body)
                return
        await self.app(scope, receive, send)

    def _check(self, scope: Scope) -> None:
        headers = Headers(scope=scope)
        host = headers.get("host", "").lower()
        if self.allowed_hosts and _hostname(host) not in self.allowed_hosts:
            raise BadRequest(
                f"host {host!r} is not one this server answers to (EASEL_ALLOWED_HOSTS)",
                details={"field": "Host"},
            )
        if scope["method"] not in STATE_CHANGING or self.any_origin:
            return
        origin = headers.get("origin")
        if origin is None:
            if headers.get("sec-fetch-site") == "cross-site":
                raise Forbidden(
                    "a cross-site request may not change anything here",
                    details={"field": "Sec-Fetch-Site"},
                )
            return
        if origin.rstrip("/").lower() in self.allowed_origins:
            return
        # The page's own server: an origin naming this very host (the scheme may differ
        # behind a TLS-terminating proxy).
        if host and _netloc(origin) == host:
            return
        raise Forbidden(
            f"origin {origin!r} may not change anything here: it is neither this server "
            "nor in EASEL_CORS_ORIGINS",
            details={"field": "Origin"},
        )
