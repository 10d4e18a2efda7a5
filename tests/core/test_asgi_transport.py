"""The in-process transport streams both ways and passes disconnects to the app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from easel.core.asgi_transport import StreamingASGITransport


class Probe:
    def __init__(self) -> None:
        self.client_has_first = asyncio.Event()
        self.app_has_first = asyncio.Event()
        self.disconnected = asyncio.Event()
        self.chunks_sent = 0


def make_app(probe: Probe) -> Starlette:
    async def stream_out(_: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"first;"
            await asyncio.wait_for(probe.client_has_first.wait(), 5)
            yield b"second"

        return StreamingResponse(chunks())

    async def stream_in(request: Request) -> Response:
        total = 0
        async for chunk in request.stream():
            if chunk:
                probe.app_has_first.set()
            total += len(chunk)
        return JSONResponse({"length": total})

    async def endless(request: Request) -> Response:
        async def watch() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass
            probe.disconnected.set()

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                probe.chunks_sent += 1
                yield b"tick\n"
                await asyncio.sleep(0)

        asyncio.get_running_loop().create_task(watch())
        return StreamingResponse(chunks())

    async def broken(_: Request) -> Response:
        raise RuntimeError("bug")

    async def head(_: Request) -> Response:
        return Response(b"body", headers={"x-kind": "head"})

    return Starlette(
        routes=[
            Route("/out", stream_out),
            Route("/in", stream_in, methods=["POST"]),
            Route("/endless", endless),
            Route("/broken", broken),
            Route("/head", head, methods=["GET", "HEAD"]),
        ]
    )


@pytest.fixture()
async def client_and_probe() -> AsyncIterator[tuple[httpx.AsyncClient, Probe]]:
    probe = Probe()
    transport = StreamingASGITransport(make_app(probe))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        yield client, probe


async def test_response_streams_before_the_app_finishes(client_and_probe) -> None:
    client, probe = client_and_probe
    received = b""
    async with client.stream("GET", "/out") as response:
        async for chunk in response.aiter_raw():
            received += chunk
            probe.client_has_first.set()
    assert received == b"first;second"


async def test_request_streams_before_the_client_finishes(client_and_probe) -> None:
    client, probe = client_and_probe

    async def body() -> AsyncIterator[bytes]:
        yield b"a" * 1000
        await asyncio.wait_for(probe.app_has_first.wait(), 5)
        yield b"b" * 1000

    response = await client.post("/in", content=body())
    assert response.json() == {"length": 2000}


async def test_closing_the_response_disconnects_the_app(client_and_probe) -> None:
    client, probe = client_and_probe
    async with client.stream("GET", "/endless") as response:
        async for _ in response.aiter_raw():
            break
    await asyncio.wait_for(probe.disconnected.wait(), 5)
    sent = probe.chunks_sent
    await asyncio.sleep(0.05)
    # Bounded queue, then send() fails: the app stops producing.
    assert probe.chunks_sent <= sent + 1


async def test_app_error_before_responding_is_a_500(client_and_probe) -> None:
    client, _ = client_and_probe
    response = await client.get("/broken")
    assert response.status_code == 500


async def test_head_has_headers_but_no_body(client_and_probe) -> None:
    client, _ = client_and_probe
    response = await client.head("/head")
    assert response.headers["x-kind"] == "head"
    assert response.content == b""
