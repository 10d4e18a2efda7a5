"""`Http1Pool` as an httpx transport: what the gateway's httpx clients of a remote service
(health probes) use when `EASEL_UPSTREAM_CLIENT=httptools`, and what lets the transport
contract tests run against it as they do against the aiohttp transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httpx

from easel.gateway.http1.pool import Http1Pool, Timeouts
from easel.gateway.http1.response import Http1Response

# A body given as bytes up to this size is sent as bytes, with the headers in one write.
_WHOLE_BODY_MAX = 64 * 1024


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, response: Http1Response) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.aiter_raw():
            yield chunk

    async def aclose(self) -> None:
        await self._response.aclose()


async def _chunks(stream: httpx.AsyncByteStream) -> AsyncIterator[bytes]:
    async for chunk in stream:
        yield chunk


class Http1Transport(httpx.AsyncBaseTransport):
    def __init__(self, url: str, *, limits: httpx.Limits, timeout: httpx.Timeout) -> None:
        parts = urlsplit(url)  # httpx's client puts a base URL's path into each request's
        self.pool = Http1Pool(
            f"{parts.scheme}://{parts.netloc}",
            timeout=timeout,
            max_connections=limits.max_connections,
            keepalive_expiry=limits.keepalive_expiry,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout")
        body: bytes | AsyncIterator[bytes] | None
        if isinstance(request.stream, httpx.ByteStream) and len(request.content) <= _WHOLE_BODY_MAX:
            body = request.content or None
        else:
            assert isinstance(request.stream, httpx.AsyncByteStream)
            body = _chunks(request.stream)
        target = request.url.raw_path.decode("ascii")
        response = await self.pool.send(
            request.method,
            target,
            [(name.lower(), value) for name, value in request.headers.raw],
            body,
            timeouts=Timeouts(**timeouts) if timeouts else None,
        )
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response),
            extensions={"http_version": response.http_version.encode()},
        )

    async def aclose(self) -> None:
        await self.pool.aclose()
