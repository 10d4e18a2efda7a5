"""The gateway app: `create_app(settings, upstreams)`.

The composition (`easel.compose`) hands over the services to route to. Those given with an
app are called in-process through an ASGI transport; their lifespans run inside the
gateway's (httpx's ASGITransport runs none itself).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI
from starlette._utils import get_route_path
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

from easel.core.container import container_of, install_container
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
from easel.gateway.upstream import Upstream, UpstreamService, build_client

PROXIED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class ProxyRoute(Route):
    """A plain Starlette route (no FastAPI body handling: bodies stream through untouched)
    that, like FastAPI's routes, names itself in the scope for logs and metrics.

    `prefix`: every path it matches is the prefix or starts with it and "/". A proxied
    request is tried against every route before its own; the prefix test turns the others
    away before Starlette's regex and parameter work."""

    def __init__(
        self,
        path: str,
        endpoint: Callable[[Request], Awaitable[Response]],
        *,
        methods: list[str],
        prefix: str,
    ) -> None:
        super().__init__(path, endpoint, methods=methods)
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


def _proxy_endpoint(service: str) -> Callable[[Request], Awaitable[Response]]:
    get_container = container_of(GatewayContainer)

    async def proxy(request: Request) -> Response:
        container = get_container(request)
        return await forward(request, container.upstreams[service], container.proxies)

    proxy.__name__ = f"proxy_{service}"
    return proxy


@dataclass(frozen=True)
class RouteEntry:
    prefix: str
    service: str


def routing_table(upstreams: Sequence[UpstreamService]) -> list[RouteEntry]:
    """Longest prefix first, so `/api/generate/async` wins over `/api/generate`."""
    entries = [RouteEntry(p, u.endpoint.name) for u in upstreams for p in u.prefixes]
    return sorted(entries, key=lambda entry: len(entry.prefix), reverse=True)


def _add_proxy_routes(app: FastAPI, upstreams: Sequence[UpstreamService]) -> None:
    for entry in routing_table(upstreams):
        endpoint = _proxy_endpoint(entry.service)
        for path in (entry.prefix, entry.prefix + "/{rest:path}"):
            route = ProxyRoute(path, endpoint, methods=PROXIED_METHODS, prefix=entry.prefix)
            app.router.routes.append(route)


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
                    endpoint=upstream.endpoint, client=client
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
    _add_proxy_routes(app, upstreams)
    app.openapi = merged_openapi(  # type: ignore[method-assign]
        app, upstreams, rate_limited=policy.applies_to
    )

    # Middleware added first runs innermost. Rate limits run inside every check of the
    # edge: after the request edge (a 429 has a request id and an access line), the
    # browser guard, CORS (a preflight is not counted, a 429 is readable cross-origin)
    # and the auth middleware, which must be added after this one: it sets the caller
    # that requests are counted by.
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
    return app
