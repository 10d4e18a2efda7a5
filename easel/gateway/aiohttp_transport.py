"""An httpx transport that sends requests with aiohttp (`EASEL_UPSTREAM_CLIENT=aiohttp`).

The default is now the gateway's own HTTP/1.1 pool (`easel.gateway.http1`), which spends
about a third of aiohttp's CPU per request; this stays as a choice with a large,
well-worn library underneath.

The proxy keeps speaking httpx (`AsyncClient.send(stream=True)`, `Response.aiter_raw()`);
only the transport underneath changes. Under concurrent load httpcore's connection pool
spends most of the gateway's time checking every pooled connection on each request (see
benchmarks/README.md, "Gateway overhead"); aiohttp's pool does not.

What this transport keeps of httpx's contract:
- both bodies stream: the request body is pulled from the httpx stream as aiohttp writes
  it; the response body is handed on chunk by chunk, undecoded (as `aiter_raw` wants);
- timeouts: `connect` bounds opening a connection, `pool` the wait for a free connection
  slot, `write` each chunk of the request body reaching the socket, `read` each wait for
  the answer (from the end of the request body on);
- failures raise httpx's exceptions (`ConnectError`, `ConnectTimeout`, `PoolTimeout`,
  `WriteTimeout`, `ReadTimeout`, `RemoteProtocolError`, ...), so callers translate them as
  they would httpx's own;
- an error raised by the request body's own iterator reaches the caller unchanged, as with
  httpx (the gateway's body-limit middleware relies on it for its 413).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import httpx
from yarl import URL

# Headers aiohttp would otherwise add on its own: httpx has already set what it means to send.
_SKIP_AUTO_HEADERS = ("Accept", "Accept-Encoding", "Content-Type", "User-Agent")
_READ_BUFSIZE = 256 * 1024
# A body given as bytes up to this size goes to aiohttp as bytes: written with the headers
# in one go into the socket's buffer (whose default high-water mark is 64 KiB), so no write
# can stall and nothing is watched; larger ones stream through `_RequestBody`.
_WHOLE_BODY_MAX = 64 * 1024


def _translate(exc: BaseException) -> httpx.TransportError:
    """The httpx exception matching an aiohttp (or asyncio) failure."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(exc, TimeoutError):  # aiohttp.SocketTimeoutError: sock_read ran out
        return httpx.ReadTimeout(message)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message)
    if isinstance(
        exc,
        aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError,
    ):
        return httpx.RemoteProtocolError(message)
    if isinstance(exc, OSError):  # aiohttp.ClientOSError included: a reset mid-exchange
        return httpx.ReadError(message)
    return httpx.TransportError(message)


class _RequestBody:
    """The httpx request stream as aiohttp's body.

    Remembers an error of the stream's own (to re-raise it unchanged) and watches each
    chunk's write: aiohttp pulls the next chunk only once the last one is in the socket's
    buffer, so a pull that does not come within the write timeout means a stalled upload.
    The watchdog then ends the wait for the answer through `deadline`.
    """

    def __init__(self, stream: httpx.AsyncByteStream, write_timeout: float | None) -> None:
        self.stream = stream
        self.write_timeout = write_timeout
        self.error: Exception | None = None
        self.stalled = False
        self.deadline: asyncio.Timeout | None = None  # set while waiting for the answer

    async def __aiter__(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        try:
            async for chunk in self.stream:
                if not chunk:
                    continue
                if self.write_timeout is None:
                    yield chunk
                    continue
                watchdog = loop.call_later(self.write_timeout, self._stall)
                try:
                    yield chunk
                finally:
                    watchdog.cancel()
        except Exception as exc:
            self.error = exc
            raise

    def _stall(self) -> None:
        if self.deadline is not None:  # still waiting for the answer
            self.stalled = True
            self.deadline.reschedule(asyncio.get_running_loop().time())


@contextmanager
def _translated(body: _RequestBody | None) -> Iterator[None]:
    try:
        yield
    except (aiohttp.ClientError, OSError) as exc:  # TimeoutError is an OSError
        if body is not None and body.error is not None:
            raise body.error from None
        if body is not None and body.stalled:
            raise httpx.WriteTimeout("the request body could not be sent in time") from exc
        raise _translate(exc) from exc


class _Slot:
    """One of the pool's connection slots (None: no limit), released once at most."""

    def __init__(self, semaphore: asyncio.Semaphore | None) -> None:
        self._semaphore = semaphore

    def release(self) -> None:
        if self._semaphore is not None:
            self._semaphore.release()
            self._semaphore = None


class _ResponseStream(httpx.AsyncByteStream):
    """An aiohttp response body as an httpx stream; closing it frees the connection slot."""

    def __init__(
        self, response: aiohttp.ClientResponse, body: _RequestBody | None, slot: _Slot
    ) -> None:
        self._response = response
        self._body = body
        self._slot = slot

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _translated(self._body):
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        try:
            if self._response.content.at_eof():
                self._response.release()  # read to the end: the connection goes back
            else:
                self._response.close()  # an unread rest: the connection cannot be reused
        finally:
            self._slot.release()


def _http_version(version: aiohttp.HttpVersion | None) -> bytes:
    return f"HTTP/{version.major}.{version.minor}".encode() if version else b"HTTP/1.1"


class AiohttpTransport(httpx.AsyncBaseTransport):
    """`httpx.AsyncHTTPTransport`'s job (HTTP/1.1 with a keep-alive pool) done by aiohttp."""

    def __init__(self, *, limits: httpx.Limits | None = None) -> None:
        limits = limits or httpx.Limits()
        self._max_connections = limits.max_connections
        self._keepalive_expiry = limits.keepalive_expiry
        self._semaphore: asyncio.Semaphore | None = None
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Built on first use: an aiohttp session belongs to the running event loop.
        if self._session is None:
            # No limit here: the semaphore is the limit, so that waiting for it is a PoolTimeout.
            if self._keepalive_expiry == 0:
                connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, force_close=True)
            else:  # None: idle connections never expire, as with httpx
                connector = aiohttp.TCPConnector(
                    limit=0, limit_per_host=0, keepalive_timeout=self._keepalive_expiry
                )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                skip_auto_headers=_SKIP_AUTO_HEADERS,
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None),
                read_bufsize=_READ_BUFSIZE,
            )
            if self._max_connections is not None:
                self._semaphore = asyncio.Semaphore(self._max_connections)
        return self._session

    async def _acquire(self, timeout: float | None) -> _Slot:
        semaphore = self._semaphore
        if semaphore is None:
            return _Slot(None)
        if not semaphore.locked():
            await semaphore.acquire()  # a free slot: returns at once, no timer needed
            return _Slot(semaphore)
        try:
            async with asyncio.timeout(timeout):
                await semaphore.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no connection to the service became free in time") from None
        return _Slot(semaphore)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._open()
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        slot = await self._acquire(timeouts.get("pool"))
        body: _RequestBody | None = None
        data: bytes | _RequestBody | None = None
        if isinstance(request.stream, httpx.ByteStream) and len(request.content) <= _WHOLE_BODY_MAX:
            data = request.content or None
        else:
            assert isinstance(request.stream, httpx.AsyncByteStream)
            data = body = _RequestBody(request.stream, timeouts.get("write"))
        # aiohttp frames the body itself: chunked when there is no Content-Length.
        headers = [
            (key.decode("latin-1"), value.decode("latin-1"))
            for key, value in request.headers.raw
            if key.lower() != b"transfer-encoding"
        ]
        try:
            with _translated(body):
                async with asyncio.timeout(None) as deadline:
                    if body is not None:
                        body.deadline = deadline
                    response = await session.request(
                        request.method,
                        URL(str(request.url), encoded=True),
                        headers=headers,
                        data=data,
                        allow_redirects=False,
                        timeout=aiohttp.ClientTimeout(
                            total=None,
                            sock_connect=timeouts.get("connect"),
                            sock_read=timeouts.get("read"),
                        ),
                    )
        except BaseException:
            slot.release()
            raise
        finally:
            if body is not None:
                body.deadline = None
        return httpx.Response(
            status_code=response.status,
            headers=list(response.raw_headers),
            stream=_ResponseStream(response, body, slot),
            extensions={
                "http_version": _http_version(response.version),
                "reason_phrase": (response.reason or "").encode("latin-1", "replace"),
            },
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
