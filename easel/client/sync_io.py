"""The blocking I/O under `Client`: open and close the httpx client, send a call's
request (retried by tenacity) and read an event stream."""

from __future__ import annotations

from collections.abc import Generator
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx
from httpx_sse import EventSource, ServerSentEvent
from tenacity import Retrying

from easel.client.call import Call
from easel.client.config import ClientBase, failure
from easel.client.errors import translate_transport_error

T = TypeVar("T")


class SyncBase(ClientBase[httpx.Client, httpx.BaseTransport]):
    """The I/O half of a client; its public methods are the subclass's."""

    @staticmethod
    def _open(timeout: httpx.Timeout, transport: httpx.BaseTransport | None) -> httpx.Client:
        return httpx.Client(timeout=timeout, transport=transport)

    # ---- lifecycle ----------------------------------------------------------------------
    def close(self) -> None:
        """Close the connections (not those of an `httpx_client` passed in)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _call(self, call: Call[T]) -> T:
        response = self._send(self._config.request(self._http, call), stream=False)
        return call.parse(response.json())

    def _bytes(self, call: Call[Any]) -> bytes:
        """The body of `call`'s answer as it came (an image)."""
        return self._send(self._config.request(self._http, call), stream=False).content

    def _send(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        retrying = Retrying(**self._config.retry_policy())
        response: httpx.Response = retrying(self._send_once, request, stream)
        return response

    def _send_once(self, request: httpx.Request, stream: bool) -> httpx.Response:
        try:
            response = self._http.send(request, stream=stream)
            if stream and response.is_error:
                response.read()
                response.close()
        except httpx.TransportError as exc:
            raise translate_transport_error(exc, str(request.url)) from exc
        if (error := failure(response)) is not None:
            raise error
        return response

    def _events(
        self, call: Call[Any], read_timeout: float | None = None
    ) -> Generator[ServerSentEvent, None, None]:
        request = self._config.request(self._http, call, stream=True, read_timeout=read_timeout)
        response = self._send(request, stream=True)
        try:
            yield from EventSource(response).iter_sse()
        except httpx.TransportError as exc:
            raise translate_transport_error(exc, str(request.url)) from exc
        finally:
            response.close()
