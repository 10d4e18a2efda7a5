"""The gateway's side of internal auth: a client's own X-Easel-* headers never reach a
service, every forwarded request and health probe is signed for the gateway's caller, and
a service refusing the gateway's credential (tokens that differ) is a 502, not a 401."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import SecretStr

from easel.core.clients import in_process_client
from easel.core.errors import Unauthorized
from easel.core.identity import (
    ALL_SCOPES,
    CALLER_HEADER,
    LOCAL_CALLER,
    USER_SCOPES,
    ApiScope,
    Caller,
    current_caller,
)
from easel.core.internal_auth import INTERNAL_HEADER, outbound_headers
from easel.gateway.app import create_app
from easel.gateway.auth.tokens import env_key_name
from easel.gateway.settings import GatewaySettings, HealthMode, ServiceEndpoint
from easel.gateway.upstream import UpstreamService
from tests.support.downstream import serving_in_thread
from tests.support.guarded_service import guarded_service, shown
from tests.support.servers import ServerProcess, free_port, start_server

PREFIX = "/api/image-utils"
TOKEN = "shared-by-the-gateway-and-its-services"
ALICE = Caller(name="alice", scopes=frozenset({ApiScope.UTILS}))
FORGED = {
    CALLER_HEADER: Caller(name="root-key", scopes=ALL_SCOPES).to_header(),
    INTERNAL_HEADER: "v1.1700000000.0123456789abcdef",
}


def echo_service(tmp_path: Path, token: str | None, seen: list[Caller]) -> FastAPI:
    """An image-utils stand-in built like every service: it says whom it believes a
    request comes from, and records whom its health probes came from."""
    router = APIRouter()

    @router.get(f"{PREFIX}/whoami")
    async def whoami() -> dict[str, Any]:
        return shown(current_caller())

    @router.post(f"{PREFIX}/own-401")
    async def own_401() -> None:
        raise Unauthorized("this service's own refusal")

    @router.get("/api/health")
    async def health() -> dict[str, str]:
        seen.append(current_caller())
        return {"status": "healthy", "service": "image_utils", "version": "x"}

    return guarded_service(tmp_path, token, router, "image_utils")


@asynccontextmanager
async def gateway_of(
    tmp_path: Path,
    service: FastAPI,
    token: str | None,
    api_key: str | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    endpoint = ServiceEndpoint("image_utils", None, HealthMode.ACTIVE, timeout=10)
    upstream = UpstreamService(endpoint=endpoint, prefixes=(PREFIX,), openapi=dict, app=service)
    settings = GatewaySettings(
        data_dir=tmp_path,
        internal_token=SecretStr(token) if token is not None else None,
        api_keys=SecretStr(api_key) if api_key is not None else None,
    )
    app = create_app(settings, [upstream])
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with (
        app.router.lifespan_context(app),
        in_process_client(app, "gateway") as client,
    ):
        client.headers.update(headers)
        yield client


async def test_a_clients_identity_headers_are_dropped(tmp_path: Path) -> None:
    service = echo_service(tmp_path, TOKEN, [])
    async with gateway_of(tmp_path, service, TOKEN, api_key="alices-key") as client:
        response = await client.get(f"{PREFIX}/whoami", headers=FORGED)
        assert response.status_code == 200, response.text
        # The caller the gateway authenticated, not the one the client claimed.
        assert response.json() == shown(Caller(env_key_name("alices-key"), USER_SCOPES))
    async with gateway_of(tmp_path, service, TOKEN) as client:  # no keys: the local caller
        response = await client.get(f"{PREFIX}/whoami", headers=FORGED)
        assert response.json() == shown(LOCAL_CALLER)


async def test_health_probes_carry_the_credential(tmp_path: Path) -> None:
    seen: list[Caller] = []
    async with gateway_of(tmp_path, echo_service(tmp_path, TOKEN, seen), TOKEN) as client:
        body = (await client.get("/api/system/health", params={"deep": "true"})).json()
    assert body["services"]["image_utils"]["status"] == "healthy", body
    # An unsigned probe would have been let in as nobody (UNVOUCHED): this one was vouched for.
    assert seen and all(caller == LOCAL_CALLER for caller in seen)


@pytest.mark.parametrize(
    ("gateway_token", "service_token"), [("not-the-same", TOKEN), (None, TOKEN)]
)
async def test_a_refused_credential_is_a_bad_gateway(
    tmp_path: Path, gateway_token: str | None, service_token: str
) -> None:
    service = echo_service(tmp_path, service_token, [])
    async with gateway_of(tmp_path, service, gateway_token) as client:
        response = await client.get(f"{PREFIX}/whoami")
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == "bad_gateway"
    assert "internal credential" in error["message"]
    assert error["details"] == {
        "service": "image_utils",
        "upstream_status": 401,
        "upstream_code": "internal_unauthorized",
    }


async def test_a_services_own_401_passes_through(tmp_path: Path) -> None:
    async with gateway_of(tmp_path, echo_service(tmp_path, TOKEN, []), TOKEN) as client:
        response = await client.post(f"{PREFIX}/own-401")
    assert response.status_code == 401, response.text
    assert response.json()["error"] == {
        "code": "unauthorized",
        "message": "this service's own refusal",
    }


# ---- over real HTTP, with either upstream client ------------------------------------------
@pytest.fixture(scope="module")
def remote_echo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    service = echo_service(tmp_path_factory.mktemp("echo"), TOKEN, [])
    with serving_in_thread(service, port):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module", params=["httptools", "aiohttp", "httpx"])
def gateway(
    request: pytest.FixtureRequest, remote_echo: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    server = start_server(
        "gateway",
        tmp_path_factory.mktemp("gateway"),
        env={
            "EASEL_IMAGE_UTILS_URL": remote_echo,
            "EASEL_UPSTREAM_CLIENT": request.param,
            "EASEL_INTERNAL_TOKEN": TOKEN,
        },
    )
    yield server
    server.stop()


def test_over_http_the_gateway_signs_and_drops_what_the_client_sent(
    gateway: ServerProcess, remote_echo: str
) -> None:
    direct = httpx.get(f"{remote_echo}{PREFIX}/whoami", headers=FORGED, timeout=10)
    assert direct.status_code == 401, direct.text
    through = httpx.get(f"{gateway.url}{PREFIX}/whoami", headers=FORGED, timeout=10)
    assert through.status_code == 200, through.text
    assert through.json() == shown(LOCAL_CALLER)
    signed = httpx.get(f"{remote_echo}{PREFIX}/whoami", headers=outbound_headers(TOKEN, ALICE))
    assert signed.json() == shown(ALICE)
