"""The gateway app: `create_app(settings)`.

Services without a URL are built here and called in-process through an ASGI transport;
their lifespans run inside the gateway's (httpx's ASGITransport runs none itself).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

from easel.core.container import container_of, install_container
from easel.core.errors import install_error_handlers
from easel.core.metrics import HttpMetrics, install_metrics
from easel.core.middleware import (
    BodyLimitMiddleware,
    RequestEdgeMiddleware,
    SecurityHeadersMiddleware,
    security_headers,
)
from easel.core.settings import Settings
from easel.gateway.container import GatewayContainer
from easel.gateway.health import HealthChecker
from easel.gateway.openapi import merged_openapi
from easel.gateway.proxy import forward
from easel.gateway.registry import SERVICES, ServiceSpec, routing_table
from easel.gateway.routes import health
from easel.gateway.upstream import Upstream, build_client

PROXIED_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class ProxyRoute(Route):
    """A plain Starlette route (no FastAPI body handling: bodies stream through untouched)
    that, like FastAPI's routes, names itself in the scope for logs and metrics."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


def _proxy_endpoint(service: str) -> Callable[[Request], Awaitable[Response]]:
    get_container = container_of(GatewayContainer)

    async def proxy(request: Request) -> Response:
        return await forward(request, get_container(request).upstreams[service])

    proxy.__name__ = f"proxy_{service}"
    return proxy


def _add_proxy_routes(app: FastAPI, specs: tuple[ServiceSpec, ...]) -> None:
    for entry in routing_table(specs):
        endpoint = _proxy_endpoint(entry.service)
        for path in (entry.prefix, entry.prefix + "/{rest:path}"):
            app.router.routes.append(ProxyRoute(path, endpoint, methods=PROXIED_METHODS))


def create_app(settings: Settings, *, services: tuple[ServiceSpec, ...] = SERVICES) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            upstreams: dict[str, Upstream] = {}
            for spec in services:
                endpoint = settings.endpoint(spec.name)
                service_app = None
                if endpoint.in_process:
                    # Services it depends on come first in SERVICES; it uses their client.
                    given = {f"{need}_client": upstreams[need].client for need in spec.needs}
                    service_app = spec.load_factory()(settings, **given)
                    await stack.enter_async_context(
                        service_app.router.lifespan_context(service_app)
                    )
                client = build_client(endpoint, settings, service_app)
                await stack.enter_async_context(client)
                upstreams[spec.name] = Upstream(endpoint=endpoint, client=client)
            checker = HealthChecker(
                timeout=settings.health_timeout, passive_window=settings.passive_health_window
            )
            install_container(
                app, GatewayContainer(settings=settings, upstreams=upstreams, health=checker)
            )
            yield

    app = FastAPI(
        title=settings.api_title,
        description="easel: AI image generation and editing. One entry point for every service.",
        version=settings.version,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    metrics = HttpMetrics("gateway")
    install_metrics(app, metrics)
    app.include_router(health.router)
    _add_proxy_routes(app, services)
    app.openapi = merged_openapi(app, settings, services)  # type: ignore[method-assign]

    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    app.add_middleware(
        SecurityHeadersMiddleware, headers=security_headers(settings.frame_ancestors)
    )
    app.add_middleware(RequestEdgeMiddleware, service=metrics.service, metrics=metrics)
    return app
