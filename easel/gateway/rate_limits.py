"""Rate limits at the gateway: requests per minute by route class, per API key (per client
address when anonymous), with the `RateLimit-*` headers on every limited response and 429
`too_many_requests` with `Retry-After` past the limit.

It runs inside the auth middleware, which sets the caller (`current_caller()`), and
inside the request edge, so a 429 has a request id and an access line. A key's own
`requests_per_minute` replaces the configured default of every class for that key.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network, ip_address

from prometheus_client import CollectorRegistry, Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from easel.core.audit import audit
from easel.core.binding import is_loopback
from easel.core.errors import TooManyRequests, error_body
from easel.core.identity import ANONYMOUS, Caller, current_caller
from easel.core.middleware import send_json_error
from easel.gateway.client_address import TrustedProxies
from easel.gateway.rate_limits_settings import RateLimitSettings
from easel.gateway.rate_limits_store import WINDOW_SECONDS, RateLimitStore, Window
from easel.gateway.route_classes import RouteClass, classify

RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")
_HEADER_NAMES = frozenset(name.lower().encode() for name in RATE_LIMIT_HEADERS)
# One IPv6 client commonly holds a whole /64: counting its addresses one by one would let
# it walk around any limit.
IPV6_PREFIX = 64


def address_subject(address: str) -> str:
    """What an anonymous client's requests are counted under: its address (IPv6: its /64)."""
    try:
        parsed = ip_address(address)
    except ValueError:  # not an address (a test transport's name): itself
        return f"address:{address}"
    if isinstance(parsed, IPv6Address):
        return f"address:{IPv6Network((parsed, IPV6_PREFIX), strict=False)}"
    return f"address:{parsed}"


@dataclass(frozen=True)
class RateLimitPolicy:
    """Which limit a request counts against."""

    settings: RateLimitSettings
    loopback: bool  # the gateway binds a loopback address: the generous defaults

    @classmethod
    def for_gateway(cls, settings: RateLimitSettings, host: str) -> RateLimitPolicy:
        return cls(settings=settings, loopback=is_loopback(host))

    def default(self, route_class: RouteClass) -> int | None:
        return self.settings.per_minute(route_class, loopback=self.loopback)

    def limit(self, route_class: RouteClass, caller: Caller) -> int | None:
        """Requests per minute for `caller` in `route_class`; None: not limited."""
        default = self.default(route_class)
        if default is None or caller.requests_per_minute is None:
            return default
        return caller.requests_per_minute or None  # the key's own; 0: none

    def applies_to(self, path: str) -> bool:
        """Whether requests to `path` are limited by default (for the OpenAPI document)."""
        return self.default(classify(path)) is not None


@dataclass(frozen=True)
class Counted:
    """A limited request, counted."""

    window: Window
    route_class: RouteClass
    caller: Caller
    address: str

    @property
    def keyed(self) -> bool:
        return self.caller.name != ANONYMOUS

    def refusal(self) -> TooManyRequests:
        whose = "this API key" if self.keyed else "this client address"
        window = self.window
        return TooManyRequests(
            f"too many {self.route_class} requests from {whose}: the limit is {window.limit} "
            f"a minute; retry in {window.reset} s",
            details={
                "route_class": str(self.route_class),
                "limit": window.limit,
                "window_seconds": WINDOW_SECONDS,
                "retry_after": window.reset,
            },
            headers={"Retry-After": str(window.reset)},
        )


class RateLimits:
    """The policy, the counters and what a refusal leaves behind (a metric, an audit line)."""

    def __init__(
        self,
        *,
        policy: RateLimitPolicy,
        store: RateLimitStore,
        proxies: TrustedProxies,
        registry: CollectorRegistry,
    ) -> None:
        self.policy = policy
        self.store = store
        self.proxies = proxies
        # Labels stay bounded: key names are the operator's; addresses all count as one.
        self.refused = Counter(
            "easel_rate_limited_requests",
            "Requests refused with 429 by the gateway's rate limits, by key name "
            "('anonymous': counted by client address) and route class.",
            ["key", "route_class"],
            registry=registry,
        )

    async def count(self, scope: Scope) -> Counted | None:
        """None when the request is not limited, or the counters are down."""
        route_class = classify(scope["path"])
        caller = current_caller()
        per_minute = self.policy.limit(route_class, caller)
        if per_minute is None:
            return None
        address = self.proxies.client(scope)
        subject = f"key:{caller.name}" if caller.name != ANONYMOUS else address_subject(address)
        window = await self.store.hit(per_minute, route_class, subject)
        if window is None:
            return None
        return Counted(window, route_class, caller, address)

    def refuse(self, counted: Counted, scope: Scope) -> TooManyRequests:
        self.refused.labels(counted.caller.name, counted.route_class).inc()
        audit(
            "rate_limit",
            key=counted.caller.name if counted.keyed else None,
            outcome="refused",
            route_class=str(counted.route_class),
            limit=counted.window.limit,
            client=counted.address,
            path=scope["path"],
        )
        return counted.refusal()

    async def aclose(self) -> None:
        await self.store.aclose()


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limits: RateLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        counted = await self.limits.count(scope)
        if counted is None:
            await self.app(scope, receive, send)
            return
        headers = counted.window.headers()
        if not counted.window.allowed:
            refusal = self.limits.refuse(counted, scope)
            body = error_body(refusal.code, refusal.message, refusal.details)
            extra = [(k.lower().encode(), v.encode()) for k, v in refusal.headers.items()]
            await send_json_error(send, refusal.status, body, headers=[*headers, *extra])
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", ()) if k not in _HEADER_NAMES]
                message = {**message, "headers": kept + headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
