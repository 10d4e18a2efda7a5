"""The asyncio I/O under `AsyncClient`: open and close the httpx client, send a call's
request (retried by tenacity) and read an event stream."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from httpx_sse import EventSource, ServerSentEvent
from tenacity import AsyncRetrying

from easel.client.call import Call
from easel.client.config import ClientBase, failure
from easel.client.errors import translate_transport_error

T = TypeVar("T")


class AsyncBase(ClientBase[httpx.AsyncClient, httpx.AsyncBaseTransport]):
    """The I/O half of a client; its public methods are the subclass's."""

    @staticmethod
    def _open(
        timeout: httpx.Timeout, transport: httpx.AsyncBaseTransport | None
    ) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=timeout, transport=transport)

    async def aclose(self) -> None:
        """Close the connections (not those of an `httpx_client` passed in)."""
        if self._owns_http:
            await self._http.aclose()

    close = aclose

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _call(self, call: Call[T]) -> T:
        response = await self._send(self._config.request(self._http, call), stream=False)
        return call.parse(response.json())

    async def _bytes(self, call: Call[Any]) -> bytes:
        """The body of `call`'s answer as it came (an image)."""
        response = await self._send(self._config.request(self._http, call), stream=False)
        return response.content

    async def _send(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        retrying = AsyncRetrying(**self._config.retry_policy())
        response: httpx.Response = await retrying(self._send_once, request, stream)
        return response

    async def _send_once(self, request: httpx.Request, stream: bool) -> httpx.Response:
        try:
            response = await self._http.send(request, stream=stream)
            if stream and response.is_error:
                await response.aread()
                await response.aclose()
        except httpx.TransportError as exc:
            raise translate_transport_error(exc, str(request.url)) from exc
        if (error := failure(response)) is not None:
            raise error
        return response

    async def _events(
        self, call: Call[Any], read_timeout: float | None = None
    ) -> AsyncGenerator[ServerSentEvent, None]:
        request = self._config.request(self._http, call, stream=True, read_timeout=read_timeout)
        response = await self._send(request, stream=True)
        try:
            async for sse in EventSource(response).aiter_sse():
                yield sse
        except httpx.TransportError as exc:
            raise translate_transport_error(exc, str(request.url)) from exc
        finally:
            await response.aclose()
