"""The gateway's transports to remote services (the aiohttp-backed one and the httptools
one, `easel.gateway.http1`), each as an httpx transport: streaming both ways, pooling, and
httpx's errors. Every test runs against both.

Each test drives the transport against a raw asyncio TCP server on loopback, so the server
can do what a well-behaved one never would (stall, cut the body short, hang up).
"""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import uvicorn

from easel.compose.settings import EaselSettings
from easel.core.errors import GatewayTimeout, ServiceUnavailable
from easel.gateway.aiohttp_transport import AiohttpTransport
from easel.gateway.http1.transport import Http1Transport
from easel.gateway.proxy import translate_transport_error
from easel.gateway.senders import Http1Sender, HttpxSender
from easel.gateway.upstream import KEEPALIVE_EXPIRY, build_client, build_sender
from tests.support.raw_http import answer, read_request, serve
from tests.support.servers import free_port

WAIT = 5.0
_chosen = {"transport": "aiohttp"}


@pytest.fixture(autouse=True, params=["aiohttp", "httptools"])
def transport_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    """Every test of this module once per transport (`transport()` builds the chosen one)."""
    _chosen["transport"] = request.param
    yield request.param
    _chosen["transport"] = "aiohttp"


def transport(url: str, limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    if _chosen["transport"] == "httptools":
        return Http1Transport(url, limits=limits, timeout=httpx.Timeout(WAIT))
    return AiohttpTransport(limits=limits)


def client(url: str, **timeouts: float) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=int(timeouts.pop("max_connections", 10)))
    return httpx.AsyncClient(
        transport=transport(url, limits),
        base_url=url,
        timeout=httpx.Timeout(WAIT, **timeouts),
    )


# ---- the happy paths ---------------------------------------------------------------------
async def test_request_and_answer_round_trip() -> None:
    seen: dict[str, object] = {}

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line, headers, body = await read_request(reader)
        seen.update(line=line, headers=headers, body=body)
        writer.write(answer(b"pong", extra="Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n"))
        await writer.drain()

    async with serve(handler) as server, client(server.url) as http:
        response = await http.post("/path/x%20y?q=1&q=2", content=b"ping", headers={"X-Trace": "7"})
    assert response.status_code == 200
    assert response.content == b"pong"
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    assert response.http_version == "HTTP/1.1"
    assert seen["line"] == "POST /path/x%20y?q=1&q=2 HTTP/1.1"
    assert seen["body"] == b"ping"
    headers = seen["headers"]
    assert isinstance(headers, dict)
    assert headers["x-trace"] == "7"
    assert headers["content-length"] == "4"
    assert "transfer-encoding" not in headers


async def test_connections_are_kept_alive_and_reused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(answer(b"ok"))
            await writer.drain()

    async with serve(handler) as server, client(server.url) as http:
        for _ in range(5):
            assert (await http.get("/")).content == b"ok"
    assert server.connections == 1


@pytest.mark.parametrize(
    ("expiry", "pause", "connections"),
    [(0.2, 0.4, 2), (0.0, 0.0, 2), (None, 0.4, 1)],
    ids=["expired", "no-keepalive", "never-expires"],
)
async def test_idle_connections_expire_after_the_keepalive_expiry(
    expiry: float | None, pause: float, connections: int
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(answer(b"ok"))
            await writer.drain()

    limits = httpx.Limits(keepalive_expiry=expiry)
    async with (
        serve(handler) as server,
        httpx.AsyncClient(transport=transport(server.url, limits), base_url=server.url) as http,
    ):
        await http.get("/")
        await asyncio.sleep(pause)
        await http.get("/")
    assert server.connections == connections


async def test_response_body_streams_before_it_ends() -> None:
    client_has_first = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nfirst;\r\n")
        await writer.drain()
        await asyncio.wait_for(client_has_first.wait(), WAIT)
        writer.write(b"6\r\nsecond\r\n0\r\n\r\n")
        await writer.drain()

    async with serve(handler) as server, client(server.url) as http:
        async with http.stream("GET", "/") as response:
            received = b""
            async for chunk in response.aiter_raw():
                received += chunk
                if received == b"first;":
                    client_has_first.set()
    assert received == b"first;second"


async def test_request_body_streams_before_it_ends() -> None:
    server_has_first = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        assert b"transfer-encoding: chunked" in head.lower()
        size = int((await reader.readline()).strip(), 16)
        first = await reader.readexactly(size)
        server_has_first.set()
        rest = b""
        await reader.readline()
        while size := int((await reader.readline()).strip(), 16):
            rest += await reader.readexactly(size)
            await reader.readline()
        writer.write(answer(first + b"|" + rest))
        await writer.drain()

    async def body() -> AsyncIterator[bytes]:
        yield b"x" * 1000
        await asyncio.wait_for(server_has_first.wait(), WAIT)
        yield b"y" * 1000

    async with serve(handler) as server, client(server.url) as http:
        response = await http.post("/", content=body())
    assert response.content == b"x" * 1000 + b"|" + b"y" * 1000


async def test_compressed_answer_is_passed_on_undecoded() -> None:
    packed = gzip.compress(b"hello " * 100)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer(packed, extra="Content-Encoding: gzip\r\n"))
        await writer.drain()

    async with serve(handler) as server, client(server.url) as http:
        async with http.stream("GET", "/") as response:
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
    assert raw == packed
    assert response.headers["content-encoding"] == "gzip"


async def test_error_in_the_request_body_reaches_the_caller_unchanged() -> None:
    class BodyBroke(Exception):
        pass

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async def body() -> AsyncIterator[bytes]:
        yield b"a"
        raise BodyBroke("the client went away")

    async with serve(handler) as server, client(server.url) as http:
        with pytest.raises(BodyBroke):
            await http.post("/", content=body())


# ---- failures become httpx's exceptions ---------------------------------------------------
async def test_refused_connection_is_connect_error() -> None:
    async with client(f"http://127.0.0.1:{free_port()}") as http:
        with pytest.raises(httpx.ConnectError) as caught:
            await http.get("/")
    assert isinstance(translate_transport_error("image_utils", caught.value), ServiceUnavailable)


async def test_unanswered_request_is_read_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(WAIT)

    async with serve(handler) as server, client(server.url, read=0.2) as http:
        with pytest.raises(httpx.ReadTimeout) as caught:
            await http.get("/")
    assert isinstance(translate_transport_error("image_utils", caught.value), GatewayTimeout)


async def test_stalled_body_is_read_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
        await writer.drain()
        await asyncio.sleep(WAIT)

    async with serve(handler) as server, client(server.url, read=0.2) as http:
        async with http.stream("GET", "/") as response:
            with pytest.raises(httpx.ReadTimeout):
                await response.aread()


async def test_upload_the_service_does_not_read_is_write_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # then never reads the body
        await asyncio.sleep(WAIT)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(256):  # 256 MB: far beyond what socket buffers absorb
            yield b"u" * (1024 * 1024)

    async with serve(handler) as server, client(server.url, write=0.3) as http:
        with pytest.raises(httpx.WriteTimeout) as caught:
            await http.post("/", content=body())
    assert isinstance(translate_transport_error("image_utils", caught.value), GatewayTimeout)


async def test_connect_timeout_when_the_server_never_accepts() -> None:
    # A listening socket that never accepts: once its backlog is full, the kernel drops
    # further SYNs, so the next connect hangs until the connect timeout.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(4):
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
                fillers.append(filler)
            await asyncio.sleep(0.1)
            async with client(f"http://127.0.0.1:{port}", connect=0.3) as http:
                with pytest.raises(httpx.ConnectTimeout) as caught:
                    await http.get("/")
        finally:
            for filler in fillers:
                filler.close()
    error = translate_transport_error("image_utils", caught.value)
    assert isinstance(error, ServiceUnavailable)


async def test_waiting_for_a_free_connection_is_pool_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(answer(b"ok"))
            await writer.drain()

    async with serve(handler) as server, client(server.url, max_connections=1, pool=0.2) as http:
        held = await http.send(http.build_request("GET", "/"), stream=True)
        with pytest.raises(httpx.PoolTimeout) as caught:
            await http.get("/")
        await held.aclose()
        assert (await http.get("/")).content == b"ok"  # the slot came back
    error = translate_transport_error("image_utils", caught.value)
    assert isinstance(error, ServiceUnavailable)
    assert error.headers == {"Retry-After": "1"}


async def test_hang_up_without_an_answer_is_remote_protocol_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async with serve(handler) as server, client(server.url) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get("/")


async def test_body_cut_short_is_remote_protocol_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
        await writer.drain()

    async with serve(handler) as server, client(server.url) as http:
        async with http.stream("GET", "/") as response:
            with pytest.raises(httpx.RemoteProtocolError):
                await response.aread()


async def test_garbage_answer_is_remote_protocol_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"this is not HTTP\r\n\r\n")
        await writer.drain()

    async with serve(handler) as server, client(server.url) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get("/")


# ---- selection by settings ------------------------------------------------------------------
def test_pooled_connections_expire_before_the_services_keepalive_closes_them() -> None:
    # Else a burst after an idle spell races the service's close and some requests get 502.
    assert KEEPALIVE_EXPIRY < uvicorn.Config(app=None).timeout_keep_alive


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("httptools", Http1Transport),
        ("aiohttp", AiohttpTransport),
        ("httpx", httpx.AsyncHTTPTransport),
    ],
)
async def test_setting_picks_the_remote_transport(
    choice: str, expected: type[httpx.AsyncBaseTransport]
) -> None:
    settings = EaselSettings.load(image_utils_url="http://127.0.0.1:1", upstream_client=choice)
    endpoint = settings.topology.endpoint("image_utils", default_timeout=5)
    async with build_client(endpoint, settings.gateway, None) as http:
        assert isinstance(http._transport, expected)
        if isinstance(http._transport, AiohttpTransport):
            assert http._transport._keepalive_expiry == KEEPALIVE_EXPIRY
        if isinstance(http._transport, Http1Transport):
            assert http._transport.pool._keepalive_expiry == KEEPALIVE_EXPIRY
        # The proxy sends over the same pool where there is one, else through httpx.
        sender = build_sender(http)
        assert isinstance(sender, Http1Sender if choice == "httptools" else HttpxSender)
