"""How the proxy sends one request to a service: a small interface, two implementations.

- `Http1Sender`: a remote service over the gateway's own HTTP/1.1 pool
  (`easel.gateway.http1`, `EASEL_UPSTREAM_CLIENT=httptools`, the default). No request or
  URL model is built: the proxy's target and headers go on as bytes, signed here as the
  httpx clients sign theirs (`InternalAuth`, the trace).
- `HttpxSender`: through the service's httpx client: an in-process service (its ASGI
  transport) and the `httpx` and `aiohttp` choices.

Both answer an `UpstreamAnswer` (status, lower-cased raw headers, the raw body) and raise
httpx's exceptions, which the proxy translates at one place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

import httpx

from easel.core.clients import InternalAuth
from easel.core.errors import InvalidInput
from easel.core.tracing import trace_headers
from easel.gateway.http1.pool import Http1Pool

Headers = list[tuple[bytes, bytes]]
Body = bytes | AsyncIterator[bytes] | None


class UpstreamAnswer(Protocol):
    status: int
    headers: Headers  # names lower-cased

    def aiter_raw(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class Sender(Protocol):
    async def send(self, method: str, target: str, headers: Headers, body: Body) -> UpstreamAnswer:
        """Send and wait for the status and headers; the caller closes the answer."""
        ...


class Http1Sender:
    def __init__(self, pool: Http1Pool, auth: InternalAuth) -> None:
        self.pool = pool
        self._auth = auth
        self._replaced = frozenset(name.lower().encode() for name in auth.replaced)

    def _signed(self, headers: Headers) -> Headers:
        kept = [(name, value) for name, value in headers if name not in self._replaced]
        for name, value in (*self._auth.signed().items(), *trace_headers().items()):
            kept.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        return kept

    async def send(self, method: str, target: str, headers: Headers, body: Body) -> UpstreamAnswer:
        return await self.pool.send(method, target, self._signed(headers), body)


class _HttpxAnswer:
    __slots__ = ("_response", "headers", "status")

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers = [(name.lower(), value) for name, value in response.headers.raw]

    def aiter_raw(self) -> AsyncIterator[bytes]:
        return self._response.aiter_raw()

    async def aclose(self) -> None:
        await self._response.aclose()


def _text(headers: Sequence[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]


class HttpxSender:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def send(self, method: str, target: str, headers: Headers, body: Body) -> UpstreamAnswer:
        try:
            outgoing = self.client.build_request(
                method, target, headers=_text(headers), content=body
            )
        except httpx.InvalidURL as exc:  # e.g. longer than httpx sends: no service can have it
            raise InvalidInput.field("path", f"cannot be forwarded: {exc}") from exc
        return _HttpxAnswer(await self.client.send(outgoing, stream=True))
