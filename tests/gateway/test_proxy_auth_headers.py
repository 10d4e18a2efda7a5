"""Modal's proxy auth in front of the services (`requires_proxy_auth`): the gateway, with
either upstream client, and a service calling another by URL (the job manager's workers
calling generation) send the proxy token as Modal-Key/Modal-Secret on every call, over
whatever a client sent; with only one half of the token set, nothing is sent."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from easel.compose.apps import connector
from easel.compose.services import service_named
from easel.compose.settings import EaselSettings
from easel.core.clients import InternalAuth
from easel.core.internal_guard import proxy_headers
from easel.core.settings import SharedSettings
from tests.support.downstream import PREFIX, Downstream
from tests.support.servers import ServerProcess, start_server

PROXY = {"EASEL_MODAL_PROXY_TOKEN_ID": "wk-proxy-id", "EASEL_MODAL_PROXY_TOKEN_SECRET": "ws-s3cr3t"}
FORGED = {"Modal-Key": "wk-client", "Modal-Secret": "ws-client"}


def test_proxy_headers_need_both_halves() -> None:
    both = SharedSettings(
        modal_proxy_token_id=SecretStr("wk-1"), modal_proxy_token_secret=SecretStr("ws-2")
    )
    assert proxy_headers(both) == {"Modal-Key": "wk-1", "Modal-Secret": "ws-2"}
    assert proxy_headers(SharedSettings(modal_proxy_token_id=SecretStr("wk-1"))) == {}
    assert proxy_headers(SharedSettings(modal_proxy_token_secret=SecretStr("ws-2"))) == {}
    assert proxy_headers(SharedSettings()) == {}


def test_the_auth_replaces_a_requests_own_proxy_headers() -> None:
    auth = InternalAuth("internal-token", {"Modal-Key": "wk-1", "Modal-Secret": "ws-2"})
    request = httpx.Request("GET", "http://service.test/x", headers=FORGED)
    signed = next(auth.auth_flow(request))
    assert signed.headers["modal-key"] == "wk-1"
    assert signed.headers["modal-secret"] == "ws-2"
    assert signed.headers.get_list("modal-key") == ["wk-1"]
    assert signed.headers["x-easel-internal"]
    # Without a proxy token the request is signed as before, nothing added.
    plain = next(InternalAuth("internal-token").auth_flow(httpx.Request("GET", "http://s.test")))
    assert "modal-key" not in plain.headers and "modal-secret" not in plain.headers


# The env of a gateway in front of the downstream, by what its test checks.
GATEWAYS = {
    "httptools": {"EASEL_UPSTREAM_CLIENT": "httptools", **PROXY},
    "aiohttp": {"EASEL_UPSTREAM_CLIENT": "aiohttp", **PROXY},
    "httpx": {"EASEL_UPSTREAM_CLIENT": "httpx", **PROXY},
    "half": {"EASEL_MODAL_PROXY_TOKEN_ID": "wk-proxy-id"},  # no secret
}


@pytest.fixture(scope="module")
def gateways(
    downstream: Downstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServerProcess]]:
    started: dict[str, ServerProcess] = {}
    try:
        for name, env in GATEWAYS.items():
            tmp = tmp_path_factory.mktemp(f"gateway-{name}")
            started[name] = start_server(
                "gateway", tmp, env={"EASEL_IMAGE_UTILS_URL": downstream.url, **env}
            )
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.mark.parametrize("client", ["httptools", "aiohttp", "httpx"])
def test_the_gateway_sends_the_proxy_token_over_the_clients(
    gateways: dict[str, ServerProcess], client: str
) -> None:
    url = gateways[client].url
    response = httpx.post(f"{url}{PREFIX}/echo", content=b"x", headers=FORGED)
    assert response.status_code == 200, response.text
    seen = response.json()["headers"]
    assert seen["modal-key"] == "wk-proxy-id"
    assert seen["modal-secret"] == "ws-s3cr3t"


def test_half_a_proxy_token_sends_nothing(gateways: dict[str, ServerProcess]) -> None:
    response = httpx.post(f"{gateways['half'].url}{PREFIX}/echo", content=b"x")
    assert response.status_code == 200, response.text
    seen = response.json()["headers"]
    assert "modal-key" not in seen and "modal-secret" not in seen


async def test_a_service_calling_another_by_url_sends_the_proxy_token(
    downstream: Downstream, tmp_path: Path
) -> None:
    # The job manager's link to generation, built as its app builds it; the downstream
    # answers on the image-utils paths, so the link is image-utils' (the same connector).
    settings = EaselSettings.load(
        data_dir=tmp_path,
        image_utils_url=downstream.url,
        modal_proxy_token_id=SecretStr(PROXY["EASEL_MODAL_PROXY_TOKEN_ID"]),
        modal_proxy_token_secret=SecretStr(PROXY["EASEL_MODAL_PROXY_TOKEN_SECRET"]),
    )
    async with AsyncExitStack() as stack:
        client = await connector(service_named("image_utils"), settings)(stack)
        response = await client.post(f"{PREFIX}/echo", content=b"x", headers=FORGED)
    seen = response.json()["headers"]
    assert (seen["modal-key"], seen["modal-secret"]) == ("wk-proxy-id", "ws-s3cr3t")
