"""One keep-alive connection to a service: writes a request, feeds the answer's parser.

One exchange at a time (no pipelining). Writes are flow-controlled: past the transport's
high-water mark a streamed request body waits for the socket to drain, at most the write
timeout, so a service that stops reading an upload is a `WriteTimeout`, not a stuck proxy.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable

import httpx

from easel.gateway.http1.response import Http1Response, timed_out

Body = bytes | AsyncIterable[bytes] | None


class Http1Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.response: Http1Response | None = None  # the exchange in flight
        self.closed = False
        self.spoiled = False  # a request was left unfinished on it: never reused
        self.idle_since = 0.0
        self.expiry: asyncio.TimerHandle | None = None
        self._drained: asyncio.Future[None] | None = None  # set while writing is paused
        self._lost: BaseException | None = None

    # ---- asyncio's protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport

    def data_received(self, data: bytes) -> None:
        if self.response is None:  # bytes nobody asked for: this connection cannot be trusted
            self.close()
            return
        self.response.feed(data)

    def eof_received(self) -> bool:
        return False  # close; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._lost = exc
        if self.response is not None:
            self.response.lost(exc)
        if self._drained is not None and not self._drained.done():
            self._drained.set_exception(self._write_error())

    def pause_writing(self) -> None:
        if self._drained is None or self._drained.done():
            self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    # ---- used by the response and the pool --------------------------------------------------
    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def close(self) -> None:
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()

    def _write_error(self) -> httpx.WriteError:
        return httpx.WriteError(str(self._lost or "the service closed the connection"))

    # ---- one exchange -------------------------------------------------------------------------
    async def write_request(
        self, head: bytes, body: Body, *, chunked: bool, timeout: float | None
    ) -> None:
        """The request line and headers (`head`, ending in the blank line), then the body."""
        transport = self.transport
        assert transport is not None
        if body is None or isinstance(body, bytes):
            transport.write(head + body if body else head)
            return
        transport.write(head)
        async for chunk in body:
            if not chunk:
                continue
            if self.closed or self._answered():
                # Gone, or answered early (a refusal before the upload ended): stop sending;
                # the rest of this request is never sent, so the connection is not reused.
                self.spoiled = True
                return
            if chunked:
                transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
            else:
                transport.write(chunk)
            await self._drain(timeout)
        if chunked and not self.closed:
            transport.write(b"0\r\n\r\n")

    def _answered(self) -> bool:
        return self.response is not None and self.response.started.done()

    async def _drain(self, timeout: float | None) -> None:
        drained = self._drained
        if drained is None or drained.done():
            if self.closed and not self._answered():
                raise self._write_error()
            return
        if timeout is None:
            await drained
            return
        error = httpx.WriteTimeout("the request body could not be sent in time")
        handle = asyncio.get_running_loop().call_later(timeout, timed_out, drained, error)
        try:
            await drained
        finally:
            handle.cancel()
