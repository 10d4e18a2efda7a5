"""Proxied paths go to their service below FastAPI's router.

The gateway's own routes (health, docs, the playground) are FastAPI's; a request for a
service's prefix is matched here, against the routing table alone, and forwarded
(`easel.gateway.proxy.forward`) without the router, its ~30 routes' regexes, FastAPI's
exception middleware or Starlette's request and response objects: on a small proxied
request those had been about a sixth of the gateway's CPU (benchmarks/README.md).

It runs innermost in the middleware stack, so every check of the edge (request ids, the
browser guard, CORS, API keys, rate limits, the body limit) has run before it, as for any
route. The proxy routes stay in FastAPI's router for what this passes on: a method no
service takes gets the router's 405.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from starlette._utils import get_route_path
from starlette.types import ASGIApp, Receive, Scope, Send

from easel.core.container import container_in
from easel.gateway.container import GatewayContainer
from easel.gateway.proxy import forward

PROXIED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass(frozen=True)
class ProxyTarget:
    """A matched prefix. `path` is what logs and metrics call the route, as for a
    Starlette route (`scope["route"].path`)."""

    service: str
    path: str


@dataclass(frozen=True)
class RouteEntry:
    prefix: str
    service: str


class ProxyDispatch:
    def __init__(self, app: ASGIApp, *, table: Sequence[RouteEntry]) -> None:
        """`table`: longest prefix first (`easel.gateway.app.routing_table`)."""
        self.app = app
        self._table = [
            (
                entry.prefix,
                entry.prefix + "/",
                ProxyTarget(entry.service, entry.prefix),
                ProxyTarget(entry.service, entry.prefix + "/{rest:path}"),
            )
            for entry in table
        ]

    def match(self, path: str) -> ProxyTarget | None:
        for prefix, below, exact, rest in self._table:
            if path == prefix:
                return exact
            if path.startswith(below):
                return rest
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in PROXIED_METHODS:
            target = self.match(get_route_path(scope))
            if target is not None:
                scope["route"] = target
                container = container_in(scope, GatewayContainer)
                await forward(
                    scope, receive, send, container.upstreams[target.service], container.proxies
                )
                return
        await self.app(scope, receive, send)
