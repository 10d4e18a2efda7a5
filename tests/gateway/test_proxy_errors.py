"""What the gateway answers when a service fails or a path cannot be forwarded as it was
decoded: a service's own error envelope passes through unchanged, whatever its status; only
a bare or unreadable 5xx becomes `bad_gateway`; an id with control characters is a 404."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse

from easel.core.clients import in_process_client
from easel.gateway.app import create_app
from easel.gateway.settings import GatewaySettings, HealthMode, ServiceEndpoint
from easel.gateway.upstream import UpstreamService
from tests.support.downstream import serving_in_thread
from tests.support.servers import ServerProcess, free_port, start_server

PREFIX = "/api/image-utils"

WORKFLOW_FAILED = {
    "code": "workflow_failed",
    "message": "ComfyUI failed running node 3 (KSampler): CUDA out of memory",
    "details": {"node": "3", "class_type": "KSampler", "exception_type": "RuntimeError"},
}
OVERLOADED = {"code": "service_unavailable", "message": "queue full", "details": {"pending": 9}}
CRASHED = {"code": "internal_error", "message": "internal server error"}


def failing_service() -> FastAPI:
    """A service answering its own enveloped errors, and bare or unreadable ones."""
    app = FastAPI()

    def envelope(request: Request, error: dict[str, Any], status: int, **headers: str) -> Any:
        body = {"error": error, "request_id": request.headers.get("x-request-id")}
        return JSONResponse(body, status_code=status, headers=headers)

    @app.get("/api/health")
    async def health() -> dict[str, str]:
        return {"status": "healthy", "service": "image_utils", "version": "x"}

    @app.post(f"{PREFIX}/workflow-failed")
    async def workflow_failed(request: Request) -> Any:
        return envelope(request, WORKFLOW_FAILED, 502)

    @app.post(f"{PREFIX}/overloaded")
    async def overloaded(request: Request) -> Any:
        return envelope(request, OVERLOADED, 503, **{"Retry-After": "7"})

    @app.post(f"{PREFIX}/crashed")
    async def crashed(request: Request) -> Any:
        return envelope(request, CRASHED, 500)

    @app.post(f"{PREFIX}/bare-502")
    async def bare_502() -> Any:
        return PlainTextResponse("bad gateway", status_code=502)

    @app.post(f"{PREFIX}/html-500")
    async def html_500() -> Any:
        return HTMLResponse("<html><body>Internal Server Error</body></html>", status_code=500)

    @app.post(f"{PREFIX}/json-500")
    async def json_500() -> Any:
        # JSON, but not an error envelope (a framework's own shape): not the service's word.
        return JSONResponse({"detail": "boom"}, status_code=500)

    return app


@pytest.fixture(scope="module")
def upstream_url() -> Iterator[str]:
    port = free_port()
    with serving_in_thread(failing_service(), port):  # type: ignore[arg-type]
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module", params=["httptools", "aiohttp", "httpx"])
def gateway(
    request: pytest.FixtureRequest, upstream_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A gateway process whose image-utils is `failing_service`, with either transport."""
    server = start_server(
        "gateway",
        tmp_path_factory.mktemp("gateway"),
        env={"EASEL_IMAGE_UTILS_URL": upstream_url, "EASEL_UPSTREAM_CLIENT": request.param},
    )
    yield server
    server.stop()


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [("workflow-failed", 502, WORKFLOW_FAILED), ("overloaded", 503, OVERLOADED)]
    + [("crashed", 500, CRASHED)],
)
def test_a_services_own_error_passes_through_unchanged(
    gateway: ServerProcess, path: str, status: int, error: dict[str, Any]
) -> None:
    response = httpx.post(f"{gateway.url}{PREFIX}/{path}", timeout=10)
    assert response.status_code == status, response.text
    assert response.json() == {"error": error, "request_id": response.headers["x-request-id"]}
    if path == "overloaded":
        assert response.headers["retry-after"] == "7"


@pytest.mark.parametrize(("path", "status"), [("bare-502", 502), ("html-500", 500)])
def test_a_bare_or_unreadable_5xx_becomes_bad_gateway(
    gateway: ServerProcess, path: str, status: int
) -> None:
    response = httpx.post(f"{gateway.url}{PREFIX}/{path}", timeout=10)
    assert response.status_code == 502, response.text
    body = response.json()
    assert body["error"]["code"] == "bad_gateway"
    assert body["error"]["details"] == {"service": "image_utils", "upstream_status": status}
    assert body["request_id"] == response.headers["x-request-id"]


def test_json_that_is_no_envelope_is_not_the_services_word(gateway: ServerProcess) -> None:
    response = httpx.post(f"{gateway.url}{PREFIX}/json-500", timeout=10)
    assert response.status_code == 502, response.text
    assert response.json()["error"]["code"] == "bad_gateway"


@pytest.fixture()
async def in_process_gateway(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway with `failing_service` in its own process, called through ASGI (as
    `easel serve all` calls every service)."""
    service = failing_service()
    endpoint = ServiceEndpoint("image_utils", None, HealthMode.ACTIVE, timeout=10)
    upstream = UpstreamService(endpoint=endpoint, prefixes=(PREFIX,), openapi=dict, app=service)
    app = create_app(GatewaySettings(data_dir=tmp_path), [upstream])
    async with app.router.lifespan_context(app), in_process_client(app, "gateway") as client:
        yield client


async def test_in_process_the_services_own_error_passes_through(
    in_process_gateway: httpx.AsyncClient,
) -> None:
    response = await in_process_gateway.post(f"{PREFIX}/workflow-failed")
    assert response.status_code == 502, response.text
    assert response.json() == {
        "error": WORKFLOW_FAILED,
        "request_id": response.headers["x-request-id"],
    }
    bare = await in_process_gateway.post(f"{PREFIX}/bare-502")
    assert bare.status_code == 502 and bare.json()["error"]["code"] == "bad_gateway"
