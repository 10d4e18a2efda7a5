"""Ids in paths that no job or request can have (control characters, escaped slashes, an
over-long path): a 404 or 422 in the error envelope through the gateway, in both topologies
(all-in-one: services called in-process; split: over real HTTP), never a 5xx."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from easel.gateway.app import create_app
from easel.gateway.settings import GatewaySettings, HealthMode, ServiceEndpoint
from easel.gateway.upstream import UpstreamService
from tests.support.downstream import serving_in_thread
from tests.support.servers import free_port, start_server

PREFIX = "/api/image-utils"

IDS = ["x%00y", "x%0ay", "x%0dy", "x%1by", "x%7fy", "%00", "x%2Fy", "x%25y", "%C3%A9", "x%ff"]
ID_PATHS = [
    ("GET", "/api/generate/status/{id}"),
    ("GET", "/api/generate/result/{id}"),
    ("POST", "/api/generate/cancel/{id}"),
    ("GET", "/api/generate/events/{id}"),
    ("POST", "/api/generate/requests/{id}/cancel"),
]


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code in (404, 422), response.text
    body = response.json()
    assert set(body) == {"error", "request_id"}, body
    assert body["error"]["code"] in ("not_found", "invalid_input")
    assert body["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize("task_id", IDS)
@pytest.mark.parametrize(("method", "template"), ID_PATHS)
def test_an_id_no_job_can_have_is_refused_in_the_envelope(
    api: httpx.Client, method: str, template: str, task_id: str
) -> None:
    # Sent exactly as written (httpx would not send a raw %00 otherwise decoded).
    url = httpx.URL(api.base_url.join(template.format(id="ID")).raw_path.decode())
    raw = url.raw_path.replace(b"ID", task_id.encode())
    response = api.request(method, url.copy_with(raw_path=raw))
    assert_refused(response)


def echo_service() -> FastAPI:
    """A service answering with the path and raw path it was sent."""
    app = FastAPI()

    @app.get(PREFIX + "/{rest:path}")
    async def echo(request: Request) -> dict[str, str]:
        scope = request.scope
        return {
            "path": scope["path"],
            "raw_path": scope["raw_path"].decode(),
            "query": scope["query_string"].decode(),
        }

    return app


@pytest.fixture()
async def gateway_app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    endpoint = ServiceEndpoint("image_utils", None, HealthMode.ACTIVE, timeout=10)
    upstream = UpstreamService(
        endpoint=endpoint, prefixes=(PREFIX,), openapi=dict, app=echo_service()
    )
    app = create_app(GatewaySettings(data_dir=tmp_path), [upstream])
    async with app.router.lifespan_context(app):
        yield app


async def call(
    app: FastAPI, path: str, raw_path: bytes, query: bytes = b""
) -> tuple[int, dict[str, Any]]:
    """One GET straight through ASGI, with a scope as a lenient server might build it."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": raw_path,
        "query_string": query,
        "headers": [(b"host", b"gateway")],
        "client": ("127.0.0.1", 1),
        "server": ("gateway", 80),
        "root_path": "",
    }
    sent: list[dict[str, Any]] = []
    body_read = False
    never = asyncio.Event()

    async def receive() -> dict[str, Any]:
        nonlocal body_read
        if body_read:
            await never.wait()  # the client stays until the answer is complete
        body_read = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body)


async def test_the_service_decodes_what_the_gateway_decoded(gateway_app: FastAPI) -> None:
    raw = PREFIX.encode() + b"/a/x%00y/b%252Fc"
    query = b"ids=a%2Fb&q=x%00y&flag"
    status, seen = await call(gateway_app, PREFIX + "/a/x\x00y/b%2Fc", raw, query)
    assert status == 200, seen
    assert seen == {
        "path": PREFIX + "/a/x\x00y/b%2Fc",
        "raw_path": raw.decode(),
        "query": query.decode(),
    }
    # Raw bytes no URL carries (a lenient server might pass them on) go on escaped.
    raw = PREFIX.encode() + b"/x\x01 y\xff"
    status, seen = await call(gateway_app, PREFIX + "/x\x01 y\xff", raw, b"q=a b")
    assert status == 200, seen
    assert (seen["raw_path"], seen["query"]) == (PREFIX + "/x%01%20y%FF", "q=a%20b")


async def test_a_path_too_long_to_forward_is_422_naming_the_path(gateway_app: FastAPI) -> None:
    # Longer than httpx sends (64 KiB); uvicorn refuses such a request line itself.
    path = PREFIX + "/" + "x" * 70_000
    status, body = await call(gateway_app, path, path.encode())
    assert status == 422, body
    assert body["error"]["code"] == "invalid_input"
    assert body["error"]["details"][0]["field"] == "path"


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    port = free_port()
    with serving_in_thread(echo_service(), port):  # type: ignore[arg-type]
        yield f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("client", ["httptools", "aiohttp", "httpx"])
def test_over_http_the_service_gets_the_path_as_sent(
    client: str, echo_url: str, tmp_path: Path
) -> None:
    env = {"EASEL_IMAGE_UTILS_URL": echo_url, "EASEL_UPSTREAM_CLIENT": client}
    gateway = start_server("gateway", tmp_path, env=env)
    try:
        raw = PREFIX + "/a/x%00y/b%2Fc%7f"
        url = httpx.URL(gateway.url).copy_with(raw_path=(raw + "?q=x%00y%2F").encode())
        response = httpx.get(url, timeout=30)
    finally:
        gateway.stop()
    assert response.status_code == 200, response.text
    assert response.json() == {
        "path": PREFIX + "/a/x\x00y/b/c\x7f",
        "raw_path": raw,
        "query": "q=x%00y%2F",
    }
