"""A real HTTP server standing in for a service, to drive the gateway into edge cases.

It answers on the image-utils paths, so a gateway pointed at it by URL forwards to it.
Runs uvicorn in a thread of the test process, so tests share events with it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.servers import free_port

PREFIX = "/api/image-utils"
WAIT = 10.0  # how long a gated step waits before giving up (a failure, never a hang)


@dataclass
class Downstream:
    port: int = 0
    health_delay: float = 0.0
    health_calls: int = 0
    seen_headers: dict[str, str] = field(default_factory=dict)
    first_chunk_received: threading.Event = field(default_factory=threading.Event)
    client_got_first_chunk: threading.Event = field(default_factory=threading.Event)
    bytes_received: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def app(self) -> Starlette:
        async def health(_: Request) -> Response:
            self.health_calls += 1
            await asyncio.sleep(self.health_delay)
            return JSONResponse({"status": "healthy", "service": "image_utils", "version": "x"})

        async def echo(request: Request) -> Response:
            self.seen_headers = dict(request.headers)
            body = await request.body()
            return JSONResponse({"headers": self.seen_headers, "length": len(body)})

        async def slow(_: Request) -> Response:
            await asyncio.sleep(3)
            return JSONResponse({"late": True})

        async def bare_500(_: Request) -> Response:
            return PlainTextResponse("boom", status_code=500)

        async def envelope_500(_: Request) -> Response:
            body = {"error": {"code": "internal_error", "message": "model exploded"}}
            return JSONResponse(body, status_code=500)

        async def overloaded(_: Request) -> Response:
            body = {"error": {"code": "service_unavailable", "message": "queue full"}}
            return JSONResponse(body, status_code=503, headers={"Retry-After": "7"})

        async def stream_out(_: Request) -> Response:
            async def chunks() -> AsyncIterator[bytes]:
                yield b"first;"
                got = await asyncio.to_thread(self.client_got_first_chunk.wait, WAIT)
                yield b"second" if got else b"TIMED-OUT: the gateway buffered the response"

            return StreamingResponse(chunks(), media_type="application/octet-stream")

        async def stream_in(request: Request) -> Response:
            total = 0
            async for chunk in request.stream():
                if chunk and not self.first_chunk_received.is_set():
                    self.first_chunk_received.set()
                total += len(chunk)
            self.bytes_received = total
            return JSONResponse({"length": total})

        routes = [
            Route("/api/health", health),
            Route(f"{PREFIX}/echo", echo, methods=["GET", "POST"]),
            Route(f"{PREFIX}/slow", slow, methods=["POST"]),
            Route(f"{PREFIX}/bare-500", bare_500, methods=["POST"]),
            Route(f"{PREFIX}/envelope-500", envelope_500, methods=["POST"]),
            Route(f"{PREFIX}/overloaded", overloaded, methods=["POST"]),
            Route(f"{PREFIX}/stream-out", stream_out),
            Route(f"{PREFIX}/stream-in", stream_in, methods=["POST"]),
        ]
        return Starlette(routes=routes)


@contextmanager
def serving_in_thread(app: Starlette, port: int) -> Iterator[None]:
    """Serve `app` with uvicorn on 127.0.0.1:`port` in a thread of the test process."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def running_downstream() -> Iterator[Downstream]:
    downstream = Downstream(port=free_port())
    with serving_in_thread(downstream.app(), downstream.port):
        yield downstream
