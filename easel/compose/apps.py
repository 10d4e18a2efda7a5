"""Building one service's app, and reaching a service from another: by URL, or in-process."""

from __future__ import annotations

from contextlib import AsyncExitStack

import httpx
from fastapi import FastAPI

from easel.compose.services import ServiceSpec, service_named
from easel.compose.settings import EaselSettings
from easel.core.clients import ClientOpener, in_process_client, remote
from easel.core.internal_guard import configured_token, proxy_headers


def build_app(spec: ServiceSpec, settings: EaselSettings, **links: ClientOpener) -> FastAPI:
    """`spec`'s app with its own settings; `links` reach the services it needs (any not
    given are connected as `connector` says). Cheap: models load in the lifespan."""
    for need in spec.needs:
        links.setdefault(need, connector(service_named(need), settings))
    return spec.load_factory()(settings.of(spec.name), **links)


def connector(spec: ServiceSpec, settings: EaselSettings) -> ClientOpener:
    """How a service reaches `spec`: at its URL, or, when it has none, through an app of
    its own in this process, whose lifespan runs in the caller's stack."""
    url = settings.topology.url(spec.name)
    token = configured_token(settings.shared)
    if url:
        return remote(url, token=token, proxy=proxy_headers(settings.shared))

    async def open_own(stack: AsyncExitStack) -> httpx.AsyncClient:
        app = build_app(spec, settings)
        await stack.enter_async_context(app.router.lifespan_context(app))
        return await stack.enter_async_context(in_process_client(app, spec.name, token=token))

    return open_own


def service_app(typed: str, settings: EaselSettings) -> FastAPI:
    """One service on its own (`easel serve image-utils`)."""
    return build_app(service_named(typed), settings)
