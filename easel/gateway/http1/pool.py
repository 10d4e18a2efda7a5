"""A keep-alive pool of HTTP/1.1 connections to one service, and `send` over it.

Timeouts mean what httpx's do: `connect` bounds opening a connection, `pool` the wait for
a free connection slot (only when all `max_connections` are busy), `write` each stall of a
streamed request body, `read` each wait for the answer and for every piece of its body.
Idle connections close after `keepalive_expiry` seconds (before the service's own
keep-alive timeout, so no request goes out on a connection the service is closing).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Iterable
from typing import NamedTuple
from urllib.parse import urlsplit

import httpx

from easel.gateway.http1.connection import Body, Http1Connection
from easel.gateway.http1.response import Http1Response

# Framing is the pool's to write: it knows what it sends.
# Sent again when a kept-alive connection turns out closed (as aiohttp does): a POST the
# service may have acted on before its connection died is never repeated.
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_FRAMING = frozenset({b"host", b"content-length", b"transfer-encoding"})


class Timeouts(NamedTuple):
    connect: float | None
    read: float | None
    write: float | None
    pool: float | None

    @classmethod
    def of(cls, timeout: httpx.Timeout) -> Timeouts:
        return cls(timeout.connect, timeout.read, timeout.write, timeout.pool)


class Http1Pool:
    def __init__(
        self,
        url: str,
        *,
        timeout: httpx.Timeout,
        max_connections: int | None = None,
        keepalive_expiry: float | None = 5.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self._host_header = parts.netloc.rsplit("@", 1)[-1].encode("idna")
        self._base = parts.path.rstrip("/").encode()  # a service mounted below a path
        self.timeouts = Timeouts.of(timeout)
        self._keepalive_expiry = keepalive_expiry
        self._slots = asyncio.Semaphore(max_connections) if max_connections else None
        self._idle: list[Http1Connection] = []
        self._open: set[Http1Connection] = set()

    # ---- connection slots -------------------------------------------------------------------
    async def _acquire_slot(self, timeout: float | None) -> None:
        slots = self._slots
        if slots is None:
            return
        if not slots.locked():
            await slots.acquire()  # free: returns at once, no timer
            return
        try:
            async with asyncio.timeout(timeout):
                await slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no connection to the service became free in time") from None

    def _release_slot(self) -> None:
        if self._slots is not None:
            self._slots.release()

    async def _connection(self, timeout: float | None) -> tuple[Http1Connection, bool]:
        """An idle connection (True: reused) or a new one."""
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if connection.expiry is not None:
                connection.expiry.cancel()
                connection.expiry = None
            expired = (
                self._keepalive_expiry is not None
                and now - connection.idle_since >= self._keepalive_expiry
            )
            if not connection.closed and not expired:
                return connection, True
            self._drop(connection)
        return await self._connect(timeout), False

    async def _connect(self, timeout: float | None) -> Http1Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, connection = await loop.create_connection(
                    Http1Connection,
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl else None,
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(
                f"no connection to {self._host}:{self._port} in time"
            ) from None
        except OSError as exc:
            raise httpx.ConnectError(f"{self._host}:{self._port}: {exc}") from exc
        self._open.add(connection)
        return connection

    def _drop(self, connection: Http1Connection) -> None:
        connection.close()
        self._open.discard(connection)

    def _give_back(self, connection: Http1Connection, reusable: bool) -> None:
        connection.response = None
        try:
            if (
                not reusable
                or connection.closed
                or connection.spoiled
                or self._keepalive_expiry == 0
            ):
                self._drop(connection)
                return
            connection.idle_since = time.monotonic()
            if self._keepalive_expiry is not None:
                connection.expiry = asyncio.get_running_loop().call_later(
                    self._keepalive_expiry, self._expire, connection
                )
            self._idle.append(connection)
        finally:
            self._release_slot()

    def _expire(self, connection: Http1Connection) -> None:
        connection.expiry = None
        if connection in self._idle:
            self._idle.remove(connection)
        self._drop(connection)

    # ---- one request ------------------------------------------------------------------------
    def _head(
        self, method: str, target: str, headers: Iterable[tuple[bytes, bytes]], body: Body
    ) -> tuple[bytes, bool]:
        lines = [
            b"%b %b%b HTTP/1.1\r\nhost: %b\r\n"
            % (method.encode(), self._base, target.encode("ascii"), self._host_header)
        ]
        declared = False
        for name, value in headers:
            if name in _FRAMING:
                declared = declared or name == b"content-length"
                if name != b"content-length" or isinstance(body, bytes) or body is None:
                    continue
            if b"\r" in value or b"\n" in value or b"\r" in name or b"\n" in name or b":" in name:
                raise httpx.LocalProtocolError(f"illegal header {name!r}")
            lines.append(b"%b: %b\r\n" % (name, value))
        chunked = False
        if isinstance(body, bytes):
            lines.append(b"content-length: %d\r\n" % len(body))
        elif body is None:
            if method not in ("GET", "HEAD", "OPTIONS", "DELETE"):
                lines.append(b"content-length: 0\r\n")
        elif not declared:
            chunked = True
            lines.append(b"transfer-encoding: chunked\r\n")
        lines.append(b"\r\n")
        return b"".join(lines), chunked

    async def send(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[bytes, bytes]],
        body: Body = None,
        *,
        timeouts: Timeouts | None = None,
    ) -> Http1Response:
        """Send the request (`target`: path and query, already escaped) and wait for the
        status and headers; the caller reads the body and must `aclose()` the response."""
        limits = timeouts or self.timeouts
        head, chunked = self._head(method, target, headers, body)
        await self._acquire_slot(limits.pool)
        try:
            return await self._exchange(head, body, chunked, limits, method)
        except BaseException:
            self._release_slot()
            raise

    async def _exchange(
        self, head: bytes, body: Body, chunked: bool, limits: Timeouts, method: str
    ) -> Http1Response:
        replayable = method in _IDEMPOTENT and (body is None or isinstance(body, bytes))
        while True:
            connection, reused = await self._connection(limits.connect)
            response = Http1Response(
                connection,
                head_request=method == "HEAD",
                read_timeout=limits.read,
                on_close=self._give_back,
            )
            connection.response = response
            try:
                await connection.write_request(head, body, chunked=chunked, timeout=limits.write)
                await response.wait_started(limits.read)
            except (httpx.RemoteProtocolError, httpx.ReadError):
                connection.response = None
                self._drop(connection)
                # A kept-alive connection the service closed (or reset) as we sent, before
                # a byte of answer: the request never reached it; again on another one.
                if reused and replayable and not response.received:
                    continue
                raise
            except BaseException:
                connection.response = None
                self._drop(connection)
                raise
            return response

    async def aclose(self) -> None:
        for connection in list(self._open):
            self._drop(connection)
        self._idle.clear()
