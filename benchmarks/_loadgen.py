"""A closed-loop HTTP/1.1 load generator, run as its own process by gateway_overhead.py.

C keep-alive connections each send the same prebuilt request, wait for the whole response,
and send again, until N responses have arrived in total. It is built on uvloop and httptools
(the C event loop and HTTP parser uvicorn itself uses, so no extra install), which costs
tens of microseconds per request: little enough not to be what is measured, though it shares
the machine's cores with the servers under test.

    python benchmarks/_loadgen.py URL BODY_FILE -n N -c C [--warmup W]

prints one JSON object: {"requests", "errors", "warmup_requests", "warmup_errors", "seconds", "rps",
"latencies_ms": [...], "status": {code: count}, "response_bytes", "first_error"}; an error
is any answer but 200, or a connection dropped mid-exchange (status 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

import httptools
import uvloop


class _Connection(asyncio.Protocol):
    """One keep-alive connection: send a request, resolve a future when its response ends."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.done: asyncio.Future[int] | None = None
        self.body_bytes = 0
        self.body_head = b""
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc or ConnectionError("connection closed mid-response"))
        if not self.lost.done():
            self.lost.set_result(None)

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        if len(self.body_head) < 300:
            self.body_head += body[:300]

    def on_message_complete(self) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(self.parser.get_status_code())

    async def exchange(self, request: bytes) -> int:
        assert self.transport is not None
        self.done = asyncio.get_running_loop().create_future()
        self.body_bytes = 0
        self.body_head = b""
        self.transport.write(request)
        return await self.done


def build_request(url: str, body: bytes, headers: Sequence[str] = ()) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    extra = "".join(f"{header}\r\n" for header in headers)
    head = (
        f"POST {parts.path or '/'} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"{extra}"
        "\r\n"
    ).encode()
    return host, port, head + body


async def run(
    url: str,
    body: bytes,
    *,
    total: int,
    concurrency: int,
    warmup: int,
    headers: Sequence[str] = (),
) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    host, port, request = build_request(url, body, headers)

    async def connect() -> _Connection:
        _, protocol = await loop.create_connection(_Connection, host, port)
        return protocol

    connections = [await connect() for _ in range(concurrency)]
    latencies: list[float] = []
    status: dict[int, int] = {}
    remaining = 0
    response_bytes = 0
    first_error = ""

    async def worker(slot: int) -> None:
        nonlocal remaining, response_bytes, first_error
        while remaining > 0:
            remaining -= 1
            conn = connections[slot]
            if conn.lost.done():  # the server closed it while idle: reconnect, as clients do
                conn = connections[slot] = await connect()
            sent = time.perf_counter()
            try:
                code = await conn.exchange(request)
            except OSError as exc:
                code = 0  # dropped mid-exchange: an error
                first_error = first_error or repr(exc)
            latencies.append((time.perf_counter() - sent) * 1000)
            status[code] = status.get(code, 0) + 1
            response_bytes = conn.body_bytes
            if code != 200 and not first_error:
                first_error = f"HTTP {code}: {conn.body_head.decode(errors='replace')}"

    # Warm up every connection (and the servers' code paths), then measure afresh.
    remaining = max(warmup, concurrency)
    await asyncio.gather(*(worker(slot) for slot in range(concurrency)))
    warmup_requests = len(latencies)
    warmup_errors = warmup_requests - status.get(200, 0)
    latencies.clear()
    status.clear()

    remaining = total
    started = time.perf_counter()
    await asyncio.gather(*(worker(slot) for slot in range(concurrency)))
    seconds = time.perf_counter() - started
    for conn in connections:
        if conn.transport is not None:
            conn.transport.close()
    ok = status.get(200, 0)
    return {
        "requests": len(latencies),
        "errors": len(latencies) - ok,
        "warmup_requests": warmup_requests,
        "warmup_errors": warmup_errors,
        "seconds": seconds,
        "rps": len(latencies) / seconds,
        "latencies_ms": latencies,
        "status": {str(code): count for code, count in status.items()},
        "response_bytes": response_bytes,
        "first_error": first_error,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("body_file", type=Path)
    parser.add_argument("-n", "--requests", type=int, default=1000)
    parser.add_argument("-c", "--concurrency", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument(
        "-H", "--header", action="append", default=[], help='"Name: value", repeatable'
    )
    args = parser.parse_args()
    result = uvloop.run(
        run(
            args.url,
            args.body_file.read_bytes(),
            total=args.requests,
            concurrency=args.concurrency,
            warmup=args.warmup,
            headers=args.header,
        )
    )
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
