"""The API-key check at the gateway's edge (pure ASGI): 401 without a valid key, 403 when
the key lacks the route's scope, each in the error envelope and in the audit log; for
every other request, the caller it authenticated is `current_caller()` until it ends.

With no keys configured nothing is checked: the caller is anonymous with every scope,
as before keys existed (and the server serves only on loopback: `easel.core.binding`).
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from easel.core.audit import audit
from easel.core.errors import EaselError, Forbidden, Unauthorized, error_body
from easel.core.identity import ALL_SCOPES, ANONYMOUS, Caller, caller_var
from easel.core.image_links import ImageLinks, LinkCheck
from easel.core.middleware import send_json_error
from easel.gateway.auth.metrics import (
    ANONYMOUS_LABEL,
    SCRAPER_LABEL,
    UNKNOWN_LABEL,
    AuthMetrics,
    AuthOutcome,
)
from easel.gateway.auth.policy import AccessPolicy, Need
from easel.gateway.auth.store import KeyStore

CHALLENGE = 'Bearer realm="easel"'
HOW_TO_SEND = "send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`"


CREDENTIAL_HEADERS = frozenset({b"authorization", b"x-api-key"})


def without_credentials(scope: Scope) -> Scope:
    """The request as the rest of the gateway sees it: the key stays at the edge, never
    forwarded to a service (nor logged by one)."""
    headers = scope["headers"]
    if not any(name in CREDENTIAL_HEADERS for name, _ in headers):
        return scope
    return {**scope, "headers": [(n, v) for n, v in headers if n not in CREDENTIAL_HEADERS]}


def presented_key(scope: Scope) -> tuple[str, str | None]:
    """(the header a key came in, the key or None). `X-API-Key` wins over Authorization;
    an Authorization of another scheme (Basic, ...) is no key."""
    authorization: str | None = None
    for name, value in scope["headers"]:
        if name == b"x-api-key" and value.strip():  # an empty one is no key: look further
            return "X-API-Key", value.decode("latin-1").strip()
        if name == b"authorization":
            authorization = value.decode("latin-1")
    if authorization is None:
        return "Authorization", None
    scheme, _, credential = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return "Authorization", None
    return "Authorization", credential.strip() or None


class _Refused(Exception):
    def __init__(self, error: EaselError, label: str, outcome: AuthOutcome, reason: str) -> None:
        self.error, self.label, self.outcome, self.reason = error, label, outcome, reason


class ApiKeyMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        store: KeyStore,
        policy: AccessPolicy,
        metrics: AuthMetrics,
        default_max_jobs: int | None = None,
        links: ImageLinks | None = None,
    ) -> None:
        self.app = app
        self.store = store
        self.policy = policy
        self.metrics = metrics
        self.links = links or ImageLinks(secret=None)
        self.open_caller = Caller(ANONYMOUS, ALL_SCOPES, max_concurrent_jobs=default_max_jobs)
        # A public route with keys on: nobody in particular, allowed nothing else.
        self.public_caller = Caller(ANONYMOUS, frozenset(), max_concurrent_jobs=default_max_jobs)
        self.scraper = Caller(SCRAPER_LABEL, frozenset())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan; the gateway proxies no websockets
            await self.app(scope, receive, send)
            return
        try:
            caller = self._caller(scope)
        except _Refused as refused:
            await self._refuse(scope, send, refused)
            return
        token = caller_var.set(caller)
        try:
            await self.app(without_credentials(scope), receive, send)
        finally:
            caller_var.reset(token)

    def _caller(self, scope: Scope) -> Caller:
        self.store.refresh()
        if not self.store.enabled:
            return self.open_caller
        need = self.policy.need(scope["path"])
        if need is None:
            return self.public_caller
        header, key = presented_key(scope)
        if need.signed_link and (signed := self._signed(scope, key)) is not None:
            return signed
        if key is not None and need.scrape_token and self.policy.is_scrape_token(key):
            self.metrics.count(SCRAPER_LABEL, AuthOutcome.ALLOWED)
            return self.scraper
        caller = self._authenticated(header, key)
        if need.scope is not None and not caller.can(need.scope):
            raise _Refused(self._forbidden(header, caller, need), caller.name,
                           AuthOutcome.FORBIDDEN, "scope")  # fmt: skip
        self.metrics.count(caller.name, AuthOutcome.ALLOWED)
        return caller

    def _authenticated(self, header: str, key: str | None) -> Caller:
        if key is None:
            error = Unauthorized(
                f"an API key is required: {HOW_TO_SEND}",
                details={"field": header},
                headers={"WWW-Authenticate": CHALLENGE},
            )
            raise _Refused(error, ANONYMOUS_LABEL, AuthOutcome.UNAUTHORIZED, "missing")
        caller = self.store.verify(key)
        if caller is None:
            error = Unauthorized(
                f"the API key in {header} is not valid (unknown or revoked)",
                details={"field": header},
                headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'},
            )
            raise _Refused(error, UNKNOWN_LABEL, AuthOutcome.UNAUTHORIZED, "unknown")
        return caller

    def _signed(self, scope: Scope, key: str | None) -> Caller | None:
        """A request by a signed image link: nobody in particular when its signature is
        valid; refused when it is not and no key came with it; None: the key decides."""
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        expires, sig = (query.get(name, [None])[0] for name in ("expires", "sig"))
        verdict = self.links.check(scope["path"], expires, sig)
        if verdict is LinkCheck.VALID:
            self.metrics.count(ANONYMOUS_LABEL, AuthOutcome.ALLOWED)
            return self.public_caller
        if verdict is LinkCheck.UNSIGNED or key is not None:
            return None
        if verdict is LinkCheck.EXPIRED:
            message = "this image link has expired: read the result again for a fresh one"
        else:
            message = "this image link's signature is not valid (altered or not this server's)"
        error = Forbidden(message, details={"field": "sig", "reason": verdict.value})
        raise _Refused(error, ANONYMOUS_LABEL, AuthOutcome.FORBIDDEN, f"link {verdict}")

    @staticmethod
    def _forbidden(header: str, caller: Caller, need: Need) -> Forbidden:
        scope = need.scope
        return Forbidden(
            f"key {caller.name!r} lacks the {scope} scope this route needs",
            details={"field": header, "scope": str(scope)},
            headers={
                "WWW-Authenticate": f'{CHALLENGE}, error="insufficient_scope", scope="{scope}"'
            },
        )

    async def _refuse(self, scope: Scope, send: Send, refused: _Refused) -> None:
        error = refused.error
        self.metrics.count(refused.label, refused.outcome)
        client = scope.get("client")
        audit(
            "auth",
            key=None if refused.label in (ANONYMOUS_LABEL, UNKNOWN_LABEL) else refused.label,
            outcome="refused",
            status=error.status,
            reason=refused.reason,
            method=scope["method"],
            path=scope["path"],
            client=client[0] if client else "-",
        )
        headers = [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
        await send_json_error(
            send, error.status, error_body(error.code, error.message, error.details), headers
        )
