"""The gateway app: `create_app(settings, upstreams)`.

The composition (`easel.compose`) hands over the services to route to. Those given with an
app are called in-process through an ASGI transport; their lifespans run inside the
gateway's (httpx's ASGITransport runs none itself).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from starlette._utils import get_route_path
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from easel.core.container import container_in, install_container
from easel.core.docs import offline_docs_app
from easel.core.errors import install_error_handlers
from easel.core.image_links import ImageLinks
from easel.core.metrics import HttpMetrics, install_metrics
from easel.core.middleware import (
    BodyLimitMiddleware,
    RequestEdgeMiddleware,
    SecurityHeadersMiddleware,
    security_headers,
)
from easel.gateway.auth.config import access_policy, key_store
from easel.gateway.auth.metrics import AuthMetrics
from easel.gateway.auth.middleware import ApiKeyMiddleware
from easel.gateway.browser_guard import BrowserGuardMiddleware
from easel.gateway.client_address import TrustedProxies
from easel.gateway.container import GatewayContainer
from easel.gateway.dispatch import PROXIED_METHODS, ProxyDispatch, RouteEntry
from easel.gateway.health import HealthChecker
from easel.gateway.openapi import merged_openapi
from easel.gateway.path_guard import DotSegmentGuard
from easel.gateway.playground import install_playground
from easel.gateway.proxy import forward
from easel.gateway.rate_limits import (
    RATE_LIMIT_HEADERS,
    RateLimitMiddleware,
    RateLimitPolicy,
    RateLimits,
)
from easel.gateway.rate_limits_store import RateLimitStore
from easel.gateway.routes import health
from easel.gateway.settings import GatewaySettings
from easel.gateway.upstream import Upstream, UpstreamService, build_client, build_sender


class ProxyRoute(Route):
    """A service's prefix in FastAPI's router. Requests of the proxied methods never reach
    it (`ProxyDispatch` forwards them first); it answers the others with the router's 405,
    and names itself in the scope for logs and metrics as FastAPI's routes do.

    `prefix`: every path it matches is the prefix or starts with it and "/". The prefix
    test turns other paths away before Starlette's regex and parameter work."""

    def __init__(self, path: str, endpoint: ASGIApp, *, prefix: str) -> None:
        super().__init__(path, endpoint, methods=list(PROXIED_METHODS))
        self.prefix = prefix
        self.exact = path == prefix  # else the `{rest:path}` route below the prefix

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http":
            path = get_route_path(scope)
            if not (path == self.prefix if self.exact else path.startswith(self.prefix + "/")):
                return Match.NONE, {}
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


class _ProxyEndpoint:
    """The routes' endpoint (a plain ASGI app: no FastAPI body handling), the same
    forwarding as `ProxyDispatch`'s."""

    def __init__(self, service: str) -> None:
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        container = container_in(scope, GatewayContainer)
        await forward(scope, receive, send, container.upstreams[self.service], container.proxies)


def routing_table(upstreams: Sequence[UpstreamService]) -> list[RouteEntry]:
    """Longest prefix first, so `/api/generate/async` wins over `/api/generate`."""
    entries = [RouteEntry(p, u.endpoint.name) for u in upstreams for p in u.prefixes]
    return sorted(entries, key=lambda entry: len(entry.prefix), reverse=True)


def _add_proxy_routes(app: FastAPI, table: Sequence[RouteEntry]) -> None:
    for entry in table:
        endpoint = _ProxyEndpoint(entry.service)
        for path in (entry.prefix, entry.prefix + "/{rest:path}"):
            app.router.routes.append(ProxyRoute(path, endpoint, prefix=entry.prefix))


def _middleware_outside_fastapi(app: FastAPI) -> None:
    """Build the stack with easel's middlewares outside FastAPI's own outer layers (its
    server-error, telemetry and body-size middlewares), not inside them: a proxied
    request then leaves from `ProxyDispatch` without passing through any of FastAPI's
    layers (~12% of the gateway's CPU on a small request, benchmarks/README.md). The
    request edge renders anything unexpected as FastAPI's would; the gateway's own routes
    still run inside FastAPI's full stack."""

    def build() -> ASGIApp:
        middleware, app.user_middleware = app.user_middleware, []
        try:
            stack = FastAPI.build_middleware_stack(app)
        finally:
            app.user_middleware = middleware
        for cls, args, kwargs in reversed(middleware):
            stack = cls(stack, *args, **kwargs)
        return stack

    app.build_middleware_stack = build  # type: ignore[method-assign]


def create_app(settings: GatewaySettings, upstreams: Sequence[UpstreamService]) -> FastAPI:
    """`upstreams` in start order: an in-process service's lifespan runs after those of
    the services it calls."""

    keys = key_store(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        keys.load()  # a keys file that cannot be used stops the start, not every request
        async with AsyncExitStack() as stack:
            clients: dict[str, Upstream] = {}
            for upstream in upstreams:
                if upstream.app is not None:
                    await stack.enter_async_context(
                        upstream.app.router.lifespan_context(upstream.app)
                    )
                client = build_client(upstream.endpoint, settings, upstream.app)
                await stack.enter_async_context(client)
                clients[upstream.endpoint.name] = Upstream(
                    endpoint=upstream.endpoint, client=client, sender=build_sender(client)
                )
            checker = HealthChecker(
                timeout=settings.health_timeout, passive_window=settings.passive_health_window
            )
            install_container(
                app,
                GatewayContainer(
                    settings=settings, upstreams=clients, health=checker, proxies=proxies
                ),
            )
            stack.push_async_callback(rate_limits.aclose)
            yield

    app = offline_docs_app(
        title=settings.api_title,
        description="easel: AI image generation and editing. One entry point for every service.",
        version=settings.version,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    metrics = HttpMetrics("gateway")
    install_metrics(app, metrics)
    proxies = TrustedProxies(settings.trusted_proxies)
    policy = RateLimitPolicy.for_gateway(settings, settings.host)
    rate_limits = RateLimits(
        policy=policy,
        store=RateLimitStore(
            redis_url=settings.rate_limit_redis_url, prefix=settings.rate_limit_redis_prefix
        ),
        proxies=proxies,
        registry=metrics.registry,
    )
    app.include_router(health.router)
    if settings.playground:
        install_playground(app)
    table = routing_table(upstreams)
    _add_proxy_routes(app, table)
    app.openapi = merged_openapi(  # type: ignore[method-assign]
        app, upstreams, rate_limited=policy.applies_to
    )

    # Middleware added first runs innermost: proxied requests leave for their service
    # from there, after every check below. Rate limits run inside every check of the
    # edge: after the request edge (a 429 has a request id and an access line), the
    # browser guard, CORS (a preflight is not counted, a 429 is readable cross-origin)
    # and the auth middleware, which must be added after this one: it sets the caller
    # that requests are counted by.
    app.add_middleware(ProxyDispatch, table=table)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RateLimitMiddleware, limits=rate_limits)
    # Inside CORS (a preflight carries no key, and a browser may read a 401), outside
    # everything that reads the body or calls a service; errors get the edge's request id.
    app.add_middleware(
        ApiKeyMiddleware,
        store=keys,
        policy=access_policy(settings),
        metrics=AuthMetrics(metrics.registry),
        default_max_jobs=settings.max_concurrent_jobs,
        links=ImageLinks.from_settings(settings),
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=settings.cors_allow_credentials,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "Retry-After", *RATE_LIMIT_HEADERS],
        )
    app.add_middleware(
        BrowserGuardMiddleware,
        allowed_origins=settings.cors_origins,
        allowed_hosts=settings.allowed_hosts,
    )
    # Before anything reads the path (the key check, the limits, the routes).
    app.add_middleware(DotSegmentGuard)
    app.add_middleware(
        SecurityHeadersMiddleware, headers=security_headers(settings.frame_ancestors)
    )
    app.add_middleware(RequestEdgeMiddleware, service=metrics.service, metrics=metrics)
    _middleware_outside_fastapi(app)
    return app
