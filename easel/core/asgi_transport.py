"""An httpx transport that calls an ASGI app in-process and streams both ways.

httpx's own `ASGITransport` runs the app to completion and buffers the whole response
before returning, so server-sent events arrive at once and image payloads are copied
whole. Here the app runs as a task: the response is returned as soon as it starts, body
chunks flow through a bounded queue (back-pressure), and closing the response early tells
the app the client disconnected, as a real server would.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from starlette.types import ASGIApp, Message

log = logging.getLogger("easel.asgi_transport")

_END = b""  # sentinel: the response body is complete
_QUEUE_CHUNKS = 16


class _Exchange:
    """One request/response in flight between the client and the app task."""

    def __init__(self, request: httpx.Request) -> None:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        self.request_chunks = request.stream.__aiter__()
        self.request_complete = False
        self.started: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self.body: asyncio.Queue[bytes | BaseException] = asyncio.Queue(_QUEUE_CHUNKS)
        self.disconnected = asyncio.Event()
        self.ended = False
        self.head_only = request.method == "HEAD"

    async def receive(self) -> Message:
        if self.request_complete:
            await self.disconnected.wait()
            return {"type": "http.disconnect"}
        try:
            chunk = await self.request_chunks.__anext__()
        except StopAsyncIteration:
            self.request_complete = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(self, message: Message) -> None:
        if self.disconnected.is_set():
            raise OSError("client disconnected")
        if message["type"] == "http.response.start":
            self.started.set_result(message)
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            if chunk and not self.head_only:
                await self.body.put(chunk)
            if not message.get("more_body", False):
                self.ended = True
                await self.body.put(_END)

    def finish(self, task: asyncio.Task[None]) -> None:
        """Called when the app task ends: unblock whoever waits on the response."""
        error = None if task.cancelled() else task.exception()
        if not self.started.done():
            if error is not None:
                log.error("in-process app failed before responding", exc_info=error)
            self.started.set_result({"type": "http.response.start", "status": 500, "headers": []})
        if error is not None or not self.ended:
            if self.body.full():
                # The stream is broken anyway: make room for the news rather than block.
                self.body.get_nowait()
            self.body.put_nowait(error or _END)

    def drain(self) -> None:
        while not self.body.empty():
            self.body.get_nowait()


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, exchange: _Exchange, task: asyncio.Task[None]) -> None:
        self.exchange = exchange
        self.task = task

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while True:
            item = await self.exchange.body.get()
            if isinstance(item, BaseException):
                raise httpx.ReadError(f"in-process app failed mid-response: {item!r}")
            if item == _END:
                return
            yield item

    async def aclose(self) -> None:
        # Like a remote server, the app learns of the disconnect (receive() answers
        # http.disconnect, send() raises) and ends on its own; nobody waits for it here.
        self.exchange.disconnected.set()
        self.exchange.drain()  # frees an app blocked on a full queue


class StreamingASGITransport(httpx.AsyncBaseTransport):
    def __init__(self, app: ASGIApp, client: tuple[str, int] = ("127.0.0.1", 0)) -> None:
        self.app = app
        self.client = client
        self.tasks: set[asyncio.Task[None]] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for (k, v) in request.headers.raw],
            "scheme": request.url.scheme,
            "path": request.url.path,
            "raw_path": request.url.raw_path.split(b"?")[0],
            "query_string": request.url.query,
            "server": (request.url.host, request.url.port),
            "client": self.client,
            "root_path": "",
        }
        exchange = _Exchange(request)
        task = asyncio.create_task(self._run(scope, exchange))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(exchange.finish)
        try:
            start = await asyncio.shield(exchange.started)
        except asyncio.CancelledError:
            exchange.disconnected.set()
            raise
        return httpx.Response(
            start["status"],
            headers=start.get("headers", []),
            stream=_ResponseStream(exchange, task),
        )

    async def _run(self, scope: dict[str, Any], exchange: _Exchange) -> None:
        await self.app(scope, exchange.receive, exchange.send)

    async def aclose(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=5)
