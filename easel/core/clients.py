"""How one service gets an HTTP client of another: one `httpx.AsyncClient`, only the
transport differs between a remote service (by URL) and one in this process (ASGI).

Every such client signs what it sends (`InternalAuth`), so no call to a service can leave
without the caller and the internal credential, and carries the current trace
(`traceparent`, `easel.core.tracing`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Iterator, Mapping
from contextlib import AsyncExitStack, contextmanager

import httpx
from starlette.types import ASGIApp

from easel.core.asgi_transport import StreamingASGITransport
from easel.core.identity import CALLER_HEADER, LOCAL_CALLER, Caller, caller_var, current_caller
from easel.core.internal_auth import INTERNAL_HEADER, outbound_headers
from easel.core.tracing import trace_hooks

ClientOpener = Callable[[AsyncExitStack], Awaitable[httpx.AsyncClient]]
"""Opens a client of another service into the caller's exit stack (closed with it)."""


class InternalAuth(httpx.Auth):
    """Signs each request to another service: `X-Easel-Caller` says who the call is for
    (`current_caller()` where it is sent), and, with a token, `X-Easel-Internal` vouches
    for exactly that header. A credential is time-limited, so it is made per request,
    never once per client. Whatever such headers a request had are replaced: a call
    carries the caller of its context, nobody else's."""

    def __init__(self, token: str | None, proxy: Mapping[str, str] | None = None) -> None:
        self.token = token
        self.proxy = dict(proxy or {})  # a proxy's own credential (Modal's proxy auth)

    @property
    def replaced(self) -> tuple[str, ...]:
        """The headers `signed()` sets: whatever a request had of them goes."""
        return (CALLER_HEADER, INTERNAL_HEADER, *self.proxy)

    def signed(self) -> dict[str, str]:
        """What a call made now carries: its caller, the credential, a proxy's own."""
        caller = current_caller()
        # The default caller travels as no header: what a service assumes without one.
        headers = outbound_headers(self.token, None if caller == LOCAL_CALLER else caller)
        headers.update(self.proxy)
        return headers

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        for name in self.replaced:
            request.headers.pop(name, None)
        request.headers.update(self.signed())
        yield request


@contextmanager
def calling_as(caller: Caller) -> Iterator[None]:
    """Calls to services made inside (and in tasks started inside) carry `caller`: the
    worker runs a job for its owner, not for whoever started the worker."""
    reset = caller_var.set(caller)
    try:
        yield
    finally:
        caller_var.reset(reset)


def in_process_client(
    app: ASGIApp, key: str, timeout: httpx.Timeout | None = None, *, token: str | None = None
) -> httpx.AsyncClient:
    """A client calling `app` in this process. It streams both ways and passes disconnects
    on, unlike httpx.ASGITransport; it runs no lifespan (the app's owner runs it)."""
    return httpx.AsyncClient(
        transport=StreamingASGITransport(app),
        base_url=f"http://{key.replace('_', '-')}.in-process",
        timeout=timeout or httpx.Timeout(5.0),
        auth=InternalAuth(token),
        event_hooks=trace_hooks(),
    )


def remote(
    url: str, *, token: str | None = None, proxy: Mapping[str, str] | None = None
) -> ClientOpener:
    """An opener of a client of the service at `url` (`proxy`: headers for a proxy in
    front of it)."""

    async def open_client(stack: AsyncExitStack) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            base_url=url, auth=InternalAuth(token, proxy), event_hooks=trace_hooks()
        )
        return await stack.enter_async_context(client)

    return open_client


def in_process(app: ASGIApp, key: str, *, token: str | None = None) -> ClientOpener:
    """An opener of a client of `app`, whose lifespan is run elsewhere."""

    async def open_client(stack: AsyncExitStack) -> httpx.AsyncClient:
        return await stack.enter_async_context(in_process_client(app, key, token=token))

    return open_client
