"""How one service gets an HTTP client of another: one `httpx.AsyncClient`, only the
transport differs between a remote service (by URL) and one in this process (ASGI). Every
call carries the current trace (`traceparent`, `easel.core.tracing`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import httpx
from starlette.types import ASGIApp

from easel.core.asgi_transport import StreamingASGITransport
from easel.core.tracing import trace_hooks

ClientOpener = Callable[[AsyncExitStack], Awaitable[httpx.AsyncClient]]
"""Opens a client of another service into the caller's exit stack (closed with it)."""


def in_process_client(
    app: ASGIApp, key: str, timeout: httpx.Timeout | None = None
) -> httpx.AsyncClient:
    """A client calling `app` in this process. It streams both ways and passes disconnects
    on, unlike httpx.ASGITransport; it runs no lifespan (the app's owner runs it)."""
    return httpx.AsyncClient(
        transport=StreamingASGITransport(app),
        base_url=f"http://{key.replace('_', '-')}.in-process",
        timeout=timeout or httpx.Timeout(5.0),
        event_hooks=trace_hooks(),
    )


def remote(url: str) -> ClientOpener:
    """An opener of a client of the service at `url`."""

    async def open_client(stack: AsyncExitStack) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=url, event_hooks=trace_hooks())
        return await stack.enter_async_context(client)

    return open_client


def in_process(app: ASGIApp, key: str) -> ClientOpener:
    """An opener of a client of `app`, whose lifespan is run elsewhere."""

    async def open_client(stack: AsyncExitStack) -> httpx.AsyncClient:
        return await stack.enter_async_context(in_process_client(app, key))

    return open_client
