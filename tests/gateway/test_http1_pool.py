"""The gateway's HTTP/1.1 pool on what the shared transport tests do not reach: answers
without a body or without a length, informational answers, a kept-alive connection the
service closed, an answer before the upload ended, back-pressure, header injection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from easel.gateway.http1.pool import Http1Pool
from easel.gateway.http1.response import HIGH_WATER
from tests.support.raw_http import answer, read_request, serve

WAIT = 5.0


def pool(url: str, **options: object) -> Http1Pool:
    return Http1Pool(url, timeout=httpx.Timeout(WAIT), **options)  # type: ignore[arg-type]


async def fetch(
    http: Http1Pool, method: str = "GET", body: bytes | None = None
) -> tuple[int, bytes]:
    response = await http.send(method, "/x", [(b"accept", b"*/*")], body)
    try:
        return response.status, await response.read()
    finally:
        await response.aclose()


async def keep_answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        line, _, _ = await read_request(reader)
        if line.startswith("HEAD"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")  # no body: HEAD
        elif "/x" in line:
            writer.write(answer(b"ok"))
        await writer.drain()


async def test_a_head_answer_has_no_body_and_the_connection_is_reused() -> None:
    async with serve(keep_answering) as server:
        http = pool(server.url)
        assert await fetch(http, "HEAD") == (200, b"")
        assert await fetch(http) == (200, b"ok")
        await http.aclose()
    assert server.connections == 1


async def test_204_and_informational_answers() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
        await read_request(reader)
        writer.write(answer(b"after"))
        await writer.drain()
        await asyncio.sleep(WAIT)

    async with serve(handler) as server:
        http = pool(server.url)
        assert await fetch(http, "DELETE") == (204, b"")
        assert await fetch(http) == (200, b"after")
        await http.aclose()
    assert server.connections == 1


async def test_a_body_delimited_by_the_connections_end() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
        await writer.drain()
        writer.close()

    async with serve(handler) as server:
        http = pool(server.url)
        assert await fetch(http) == (200, b"until the end")
        assert await fetch(http) == (200, b"until the end")  # on a new connection
        await http.aclose()
    assert server.connections == 2


async def test_a_kept_alive_connection_the_service_closed_is_retried_once() -> None:
    """The service closes an idle connection just as a request goes out on it (its
    keep-alive timeout racing ours): nothing was answered, so an idempotent request is
    sent again on a new connection, not failed with a 502."""
    served = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await read_request(reader)
        served += 1
        writer.write(answer(b"ok"))
        await writer.drain()
        await read_request(reader)  # the next request on this connection: hang up on it

    async with serve(handler) as server:
        http = pool(server.url)
        assert await fetch(http) == (200, b"ok")
        assert await fetch(http, "PUT", b"again") == (200, b"ok")
        await http.aclose()
    assert served == 2
    assert server.connections == 2


async def test_a_post_is_never_sent_twice() -> None:
    """The service may have acted on a POST before its connection died."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"ok"))
        await writer.drain()
        await read_request(reader)  # the POST: hang up on it

    async with serve(handler) as server:
        http = pool(server.url)
        assert await fetch(http) == (200, b"ok")
        with pytest.raises(httpx.RemoteProtocolError):
            await fetch(http, "POST", b"submit a job")
        await http.aclose()
    assert server.connections == 1


async def test_a_streamed_body_is_not_sent_twice() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(b"ok"))
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")  # the streamed request's head: hang up

    async def body() -> AsyncIterator[bytes]:
        yield b"once"

    async with serve(handler) as server:
        http = pool(server.url)
        assert await fetch(http) == (200, b"ok")
        with pytest.raises(httpx.RemoteProtocolError):
            await http.send("POST", "/x", [], body())
        await http.aclose()
    assert server.connections == 1


async def test_an_answer_before_the_upload_ended_stops_the_upload() -> None:
    refused = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer(b"too large", status="413 Content Too Large"))
        await writer.drain()
        refused.set()
        await asyncio.sleep(WAIT)

    async def body() -> AsyncIterator[bytes]:
        yield b"a" * 1000
        await asyncio.wait_for(refused.wait(), WAIT)
        await asyncio.sleep(0.1)  # the answer has arrived
        for _ in range(1000):
            yield b"b" * 1000

    async with serve(handler) as server:
        http = pool(server.url)
        response = await http.send("POST", "/x", [], body())
        assert response.status == 413
        assert await response.read() == b"too large"
        await response.aclose()
        assert not http._idle  # the rest of the request was never sent: not reused
        await http.aclose()


async def test_a_slow_reader_pauses_the_service_not_the_memory() -> None:
    size = 128 * HIGH_WATER  # 32 MiB: well beyond what loopback socket buffers hold
    sent_all = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        for _ in range(size // 65536):
            writer.write(b"z" * 65536)
            await writer.drain()
        sent_all.set()

    async with serve(handler) as server:
        http = pool(server.url)
        response = await http.send("GET", "/x", [], None)
        await asyncio.sleep(0.5)  # the service sends what the buffers take, then waits
        assert response._buffered <= HIGH_WATER + 65536 * 4
        assert not sent_all.is_set()
        received = len(await response.read())
        await response.aclose()
        await http.aclose()
    assert received == size


@pytest.mark.parametrize(
    "header", [(b"x-evil", b"a\r\nx-injected: 1"), (b"x-evil\r\nx-injected", b"1")]
)
async def test_a_header_cannot_smuggle_another(header: tuple[bytes, bytes]) -> None:
    async with serve(keep_answering) as server:
        http = pool(server.url)
        with pytest.raises(httpx.LocalProtocolError):
            await http.send("GET", "/x", [header], None)
        await http.aclose()
    assert server.connections == 0


async def test_the_service_gets_its_host_and_the_bodys_own_length() -> None:
    seen: dict[str, object] = {}

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line, headers, body = await read_request(reader)
        seen.update(line=line, headers=headers, body=body)
        writer.write(answer(b"ok"))
        await writer.drain()

    async with serve(handler) as server:
        http = pool(server.url + "/mounted")
        stale = [(b"host", b"client.example"), (b"content-length", b"999")]
        response = await http.send("POST", "/x?q=1", stale, b"four")
        await response.aclose()
        await http.aclose()
    assert seen["line"] == "POST /mounted/x?q=1 HTTP/1.1"
    headers = seen["headers"]
    assert isinstance(headers, dict)
    assert headers["host"] == server.url.removeprefix("http://")
    assert headers["content-length"] == "4"
    assert seen["body"] == b"four"
