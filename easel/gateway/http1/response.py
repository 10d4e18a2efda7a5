"""One response as it arrives: httptools' parser callbacks in, a streamed body out.

The body is buffered up to `HIGH_WATER` bytes; above that the connection stops reading
from its socket until the consumer catches up, so a slow client of the gateway slows the
service's sending (TCP back-pressure) instead of growing the gateway's memory.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import httptools
import httpx

if TYPE_CHECKING:
    from easel.gateway.http1.connection import Http1Connection

HIGH_WATER = 256 * 1024
LOW_WATER = 64 * 1024
# Statuses whose responses never have a body, whatever their headers say (RFC 9110 6.4.1).
_NO_BODY = frozenset({204, 304})


def timed_out(waiter: asyncio.Future[None], error: BaseException) -> None:
    if not waiter.done():
        waiter.set_exception(error)


class Http1Response:
    """Status and headers once `started` is done; then `aiter_raw()` and `aclose()`.

    Header names are lower-cased bytes; the body comes as the service framed it for the
    content (a gzip body stays gzip), with the transfer framing (chunked) taken off."""

    def __init__(
        self,
        connection: Http1Connection,
        *,
        head_request: bool,
        read_timeout: float | None,
        on_close: Callable[[Http1Connection, bool], None],
    ) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.http_version = "HTTP/1.1"
        self._connection = connection
        self._loop = asyncio.get_running_loop()
        self.started: asyncio.Future[None] = self._loop.create_future()
        self._parser = httptools.HttpResponseParser(self)
        self._head_request = head_request
        self._read_timeout = read_timeout
        self._on_close = on_close
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._until_close = False  # a body delimited by the connection's end (no length)
        self.complete = False
        self._reusable = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self.received = False  # any byte of an answer

    # ---- fed by the connection ----------------------------------------------------------
    def feed(self, data: bytes) -> None:
        self.received = True
        if self.complete:  # bytes after a whole response: nothing we asked for
            self._reusable = False
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.fail(httpx.RemoteProtocolError(f"the service sent a malformed answer: {exc}"))
            self._connection.close()

    def lost(self, exc: BaseException | None) -> None:
        """The connection ended: the end of a body delimited by it, else a failure."""
        if self.complete:
            return
        if exc is None and self.started.done() and self._until_close:
            self._finish(reusable=False)
            return
        if isinstance(exc, OSError):
            self.fail(httpx.ReadError(str(exc) or "the connection to the service was reset"))
        elif self.started.done():
            self.fail(httpx.RemoteProtocolError("the service closed the connection mid-body"))
        else:
            self.fail(httpx.RemoteProtocolError("the service closed the connection unanswered"))

    def fail(self, error: BaseException) -> None:
        if self.complete or self._error is not None:
            return
        self._error = error
        if not self.started.done():
            self.started.set_exception(error)
            self.started.exception()  # retrieved here: the caller may already be gone
        self._wake()

    # ---- httptools' callbacks -------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # informational (a 100 Continue): the real answer follows
            self.headers = []
            return
        self.status = status
        self.http_version = f"HTTP/{self._parser.get_http_version()}"
        if not self.started.done():
            self.started.set_result(None)
        if self._head_request or status in _NO_BODY:
            # httptools cannot be told a response answers HEAD: it would wait for the body
            # its Content-Length announces. The next exchange gets a parser of its own.
            self._finish(reusable=self._parser.should_keep_alive())
            return
        names = {name for name, _ in self.headers}
        self._until_close = b"content-length" not in names and b"transfer-encoding" not in names

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._paused:
            self._paused = True
            self._connection.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.status == 0:  # the end of an informational response
            return
        self._finish(reusable=self._parser.should_keep_alive() and not self._until_close)

    def _finish(self, *, reusable: bool) -> None:
        if self.complete:
            return
        self.complete = True
        self._reusable = reusable
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ---- the consumer's side --------------------------------------------------------------
    async def wait_started(self, timeout: float | None) -> None:
        if self.started.done():
            self.started.result()
            return
        await self._timed(self.started, timeout, "the service did not answer in time")

    async def _timed(self, waiter: asyncio.Future[None], timeout: float | None, what: str) -> None:
        if timeout is None:
            await waiter
            return
        handle = self._loop.call_later(timeout, timed_out, waiter, httpx.ReadTimeout(what))
        try:
            await waiter
        finally:
            handle.cancel()

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        while True:
            while self._chunks:
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._paused and self._buffered <= LOW_WATER:
                    self._paused = False
                    self._connection.resume_reading()
                yield chunk
            if self._error is not None:
                raise self._error
            if self.complete:
                return
            self._waiter = self._loop.create_future()
            try:
                await self._timed(self._waiter, self._read_timeout, "the service's body stalled")
            finally:
                self._waiter = None

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_raw()])

    async def aclose(self) -> None:
        """Give the connection back (read to its end) or close it (an unread rest)."""
        if self._closed:
            return
        self._closed = True
        reusable = self.complete and self._reusable and self._error is None and not self._chunks
        self._on_close(self._connection, reusable)
