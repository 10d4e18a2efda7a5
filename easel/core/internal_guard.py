"""The service side of internal auth: which requests a service answers, and whom it
believes they come from.

With `EASEL_INTERNAL_TOKEN` set, a service answers only requests whose `X-Easel-Internal`
credential (`easel.core.internal_auth`) is valid for the `X-Easel-Caller` header they carry;
any other is refused 401 `internal_unauthorized`. Without a token it answers everyone (it is
in-process, or on loopback: `bind_refusal` keeps it there) and believes the caller header.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from easel.core.audit import audit
from easel.core.binding import UnsafeBinding, check_binding
from easel.core.errors import InternalUnauthorized, error_body
from easel.core.identity import ANONYMOUS, CALLER_HEADER, LOCAL_CALLER, Caller, caller_var
from easel.core.internal_auth import INTERNAL_HEADER, credential_is_valid
from easel.core.middleware import send_json_error
from easel.core.settings import SharedSettings

log = logging.getLogger("easel.internal_auth")

# Liveness stays open, credential or not: supervisors (`easel up`'s health waits and
# watchdog, systemd, Kubernetes probes) and load balancers poll it and cannot sign requests
# (the credential is an HMAC that expires), and it tells nothing but "up, this version".
# Everything else, /metrics, /docs and /openapi.json included, needs the credential.
OPEN_PATHS = frozenset({"/api/health", "/health"})  # compat: /health, the first version's
_OPEN_METHODS = frozenset({"GET", "HEAD"})

# Who an open path's request is, when nobody vouched for it: nobody, with no scope.
UNVOUCHED = Caller(name=ANONYMOUS, scopes=frozenset())

_SHOWN_HEADER = "X-Easel-Internal"


def configured_token(settings: SharedSettings) -> str | None:
    """EASEL_INTERNAL_TOKEN's value, None when unset or empty."""
    if settings.internal_token is None:
        return None
    return settings.internal_token.get_secret_value() or None


def proxy_headers(settings: SharedSettings) -> dict[str, str]:
    """What a call to a service carries for a proxy in front of it (Modal's proxy auth):
    nothing unless both halves of the token are set."""
    key, secret = settings.modal_proxy_token_id, settings.modal_proxy_token_secret
    if key is None or secret is None:
        return {}
    return {"Modal-Key": key.get_secret_value(), "Modal-Secret": secret.get_secret_value()}


def trusted_caller(
    headers: Mapping[str, str], token: str | None, *, max_age: float
) -> Caller | None:
    """The caller a request speaks for (from `X-Easel-Caller`), or None when `token` is set
    and the request's credential is missing, expired, or made for another caller header.

    No caller header is `LOCAL_CALLER` (a worker's own call, a probe); one that does not
    parse is `UNVOUCHED`, with no scope at all.
    """
    caller_header = headers.get(CALLER_HEADER, "")
    if token is not None and not credential_is_valid(
        token, headers.get(INTERNAL_HEADER), caller_header, max_age=max_age
    ):
        return None
    if not caller_header:
        return LOCAL_CALLER
    try:
        return Caller.from_header(caller_header)
    except ValueError:
        # Someone meant a caller and it cannot be read (e.g. a newer gateway's scope): it
        # gets nothing, not the local operator's every scope.
        log.warning("ignored an unreadable %s header", CALLER_HEADER)
        return UNVOUCHED


class InternalAuthMiddleware:
    """Refuses what `trusted_caller` does not trust (but on `OPEN_PATHS`), and sets
    `caller_var` for the request to the caller it does."""

    def __init__(self, app: ASGIApp, *, service: str, token: str | None, max_age: float) -> None:
        self.app = app
        self.service = service
        self.token = token
        self.max_age = max_age

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        caller = trusted_caller(headers, self.token, max_age=self.max_age)
        if caller is None:
            if scope.get("method") in _OPEN_METHODS and scope["path"] in OPEN_PATHS:
                caller = UNVOUCHED
            else:
                await self._refuse(scope, headers, send)
                return
        reset = caller_var.set(caller)
        try:
            await self.app(scope, receive, send)
        finally:
            caller_var.reset(reset)

    async def _refuse(self, scope: Scope, headers: Headers, send: Send) -> None:
        reason = "invalid" if headers.get(INTERNAL_HEADER) else "missing"
        audit(
            "internal_auth",
            key=None,
            outcome="refused",
            service=self.service,
            path=scope["path"],
            reason=reason,
        )
        if scope["type"] == "websocket":  # closed before accept: the client sees a 403
            await send({"type": "websocket.close", "code": 1008})
            return
        what = "no" if reason == "missing" else "an invalid or expired"
        exc = InternalUnauthorized(
            f"the {self.service} service answers only other easel services: the request "
            f"carries {what} {_SHOWN_HEADER} credential",
            details={"header": _SHOWN_HEADER, "reason": reason},
        )
        await send_json_error(send, exc.status, error_body(exc.code, exc.message, exc.details))


def bind_refusal(settings: SharedSettings, service: str, host: str) -> str | None:
    """Why `service` must not start on `host`, or None: a service reachable from other
    machines without EASEL_INTERNAL_TOKEN answers anyone, around the gateway's keys
    (EASEL_ALLOW_UNAUTHENTICATED=true lets it, with a warning)."""
    try:
        warning = check_binding(
            host,
            protected=configured_token(settings) is not None,
            allowed=settings.allow_unauthenticated,
            missing="EASEL_INTERNAL_TOKEN (the same in every service, gateway and worker)",
            who=service,
        )
    except UnsafeBinding as exc:
        return str(exc)
    if warning is not None:
        log.warning("%s", warning)
    return None
